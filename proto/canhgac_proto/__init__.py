"""Generated protobuf/gRPC packages of the Canh Gác wire contract."""
