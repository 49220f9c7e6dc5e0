"""Baseline for the ingest benchmark: the same proto and server options, a servicer that acks
every report without authenticating, decoding or storing it. `python -m bench.noop_server PORT`."""

from __future__ import annotations

import sys
from concurrent import futures

import grpc

from canhgac_proto.v1 import collector_pb2 as pb
from canhgac_proto.v1 import collector_pb2_grpc as pb_grpc
from collector.config import LimitsConfig

__all__ = ["main"]


class NoopServicer(pb_grpc.CollectorServicer):
    def Submit(self, request: pb.SubmitRequest, context: grpc.ServicerContext) -> pb.SubmitResponse:
        return pb.SubmitResponse(stored_seqs=[r.seq for r in request.reports])


def main() -> None:
    limits = LimitsConfig()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=limits.workers),
        options=[("grpc.max_receive_message_length", limits.max_message_bytes * 4)],
        maximum_concurrent_rpcs=limits.max_concurrent_rpcs,
    )
    pb_grpc.add_CollectorServicer_to_server(NoopServicer(), server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"127.0.0.1:{sys.argv[1]}")
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
