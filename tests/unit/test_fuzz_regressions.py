"""Cases the fuzz targets (tests/fuzz, `make fuzz`) found, kept so they stay fixed."""

from __future__ import annotations

import zlib

import pytest

from agent.transport import client
from agent.transport.client import DeliveryError
from agent.transport.wire import _PREFIX, MAX_RECEIVE_BYTES, RpcError, StatusCode, _decode_messages
from canhgac_proto.v1 import collector_pb2 as pb


def _framed(body: bytes, compressed: bool = True) -> bytearray:
    return bytearray(_PREFIX.pack(int(compressed), len(body)) + body)


@pytest.mark.parametrize(
    "body",
    [b"", b"not gzip", zlib.compress(b"x" * 100, wbits=16 + zlib.MAX_WBITS)[:-6]],
    ids=["empty", "garbage", "truncated"],
)
def test_a_corrupt_gzip_message_is_the_calls_error_not_zlibs(body: bytes) -> None:
    # Found by test_fuzz_agent_message_framing: b'\x01\x00\x00\x00\x00' with gzip raised
    # zlib.error, which the channel did not catch (the agent's delivery died on it).
    with pytest.raises(RpcError) as e:
        _decode_messages(_framed(body), "gzip")
    assert e.value.code is StatusCode.INTERNAL


def test_a_gzip_message_inflating_beyond_the_limit_is_refused() -> None:
    bomb = zlib.compress(bytes(MAX_RECEIVE_BYTES + 1), wbits=16 + zlib.MAX_WBITS)
    assert len(bomb) < 10_000
    with pytest.raises(RpcError) as e:
        _decode_messages(_framed(bomb), "gzip")
    assert e.value.code is StatusCode.RESOURCE_EXHAUSTED
    ok = zlib.compress(b"answer", wbits=16 + zlib.MAX_WBITS)
    assert _decode_messages(_framed(ok), "gzip") == [b"answer"]


def test_an_undecodable_answer_is_a_transient_delivery_error() -> None:
    # An answer that is not the expected message raised protobuf's DecodeError out of
    # CollectorClient (a traceback from `canhgac-agent enroll`).
    with pytest.raises(DeliveryError) as e:
        client._answer(pb.SubmitResponse, b"\x0a\x05ab")
    assert e.value.code is StatusCode.INTERNAL and e.value.transient
    assert "undecodable SubmitResponse" in str(e.value)
