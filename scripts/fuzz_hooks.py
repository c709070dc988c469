"""schemathesis hooks for scripts/fuzz_api.py: bodies for the media types it cannot generate itself.

Prometheus remote write takes a snappy-compressed protobuf WriteRequest. The strategy draws
well-formed requests (random names, labels and samples), snappy frames of arbitrary bytes, and raw
arbitrary bytes, so the server sees both what Prometheus sends and what it never should."""
import cramjam
import schemathesis
from hypothesis import strategies as st

import remote_write

texts = st.text(max_size=12)
one_series = st.builds(
    lambda name, labels, samples: remote_write.series(
        remote_write.label("__name__", name) + b"".join(remote_write.label(k, v) for k, v in labels),
        b"".join(remote_write.sample(v, t) for v, t in samples),
    ),
    texts,
    st.lists(st.tuples(texts, texts), max_size=3),
    st.lists(st.tuples(st.floats(), st.integers(min_value=-(2**63), max_value=2**63 - 1)), max_size=4),
)
well_formed = st.lists(one_series, max_size=4).map(remote_write.body)
snappy_garbage = st.binary(max_size=256).map(lambda raw: bytes(cramjam.snappy.compress_raw(raw)))

schemathesis.openapi.media_type(
    "application/x-protobuf", st.one_of(well_formed, snappy_garbage, st.binary(max_size=256))
)
