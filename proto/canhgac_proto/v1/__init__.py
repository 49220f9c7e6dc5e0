"""Canh Gác wire contract v1 (generated code lives beside the .proto files)."""
