"""Prometheus remote-write 1.0 bodies, written by hand from the protocol's field numbers:
WriteRequest{1: TimeSeries*}, TimeSeries{1: Label*, 2: Sample*}, Label{1: name, 2: value},
Sample{1: double value, 2: int64 timestamp in ms}. The body is the request, snappy-compressed."""
import struct

import cramjam


def varint(number):
    number &= 2**64 - 1  # int64 as protobuf writes it: negative numbers take ten bytes
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def length_delimited(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def label(name, value):
    return length_delimited(1, length_delimited(1, name.encode()) + length_delimited(2, value.encode()))


def sample(value, timestamp_ms):
    return length_delimited(2, b"\x09" + struct.pack("<d", value) + b"\x10" + varint(timestamp_ms))


def series(labels, samples):
    """One TimeSeries from encoded labels and samples (bytes, as `label` and `sample` give them)."""
    return length_delimited(1, labels + samples)


def body(all_series):
    """The HTTP body: the WriteRequest of encoded series, snappy-compressed."""
    return bytes(cramjam.snappy.compress_raw(b"".join(all_series)))


HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf", "X-Prometheus-Remote-Write-Version": "0.1.0"}
