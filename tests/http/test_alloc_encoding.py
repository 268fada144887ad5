"""`http.alloc_encoding`: each job version encoded once per encoder, and an answer decodes to
the allocs with their jobs whichever job was encoded just before."""

import msgspec

from yurt.http.alloc_encoding import allocs_with_encoded_jobs, encode_allocs_with_jobs, encoded_job
from yurt.structs import Allocation, Job, evolve
from yurt.testing.mock import mock_alloc, mock_job, mock_node

_msgpack = msgspec.msgpack.Encoder()


class _Snap:
    def job_version(self, namespace, job_id, version):
        return None

    def job_by_id(self, namespace, job_id):
        return None


def test_each_encoder_gets_its_own_encoding_of_a_job():
    job = mock_job()
    as_json = encoded_job(job)
    as_msgpack = encoded_job(job, _msgpack)
    assert msgspec.json.decode(bytes(as_json))["ID"] == job.id
    assert msgspec.msgpack.decode(bytes(as_msgpack))["ID"] == job.id
    assert encoded_job(job) is as_json  # the JSON one again, not the msgpack one encoded last


def test_answers_carry_each_allocs_own_job():
    node = mock_node()
    first = mock_job()
    second = evolve(first, version=first.version + 1, job_modify_index=first.job_modify_index + 1,
                    meta={"changed": "yes"})
    allocs = [mock_alloc(first, node), mock_alloc(second, node), mock_alloc(first, node)]
    for encoder, decode in ((msgspec.json.Encoder(), msgspec.json.decode), (_msgpack, msgspec.msgpack.decode)):
        for _ in range(2):  # again, with the last job encoded still remembered
            got = decode(encode_allocs_with_jobs(_Snap(), allocs, encoder), type=list[Allocation])
            assert [a.id for a in got] == [a.id for a in allocs]
            assert [a.job.version for a in got] == [first.version, second.version, first.version]
            assert got[1].job.meta == {"changed": "yes"} and not (got[0].job.meta or {}).get("changed")
            assert isinstance(got[0].job, Job)


def test_allocs_encoded_inside_a_reply_are_the_bytes_of_the_encoded_list():
    """The RPC listener frames the allocs (with their encoded jobs) inside its reply in one
    encode: the same bytes as the list encoded apart and spliced in."""
    node = mock_node()
    job = mock_job()
    allocs = [mock_alloc(job, node), evolve(mock_alloc(job, node), job=None)]

    class _Stored(_Snap):
        def job_version(self, namespace, job_id, version):
            return job

    snap = _Stored()
    inline = _msgpack.encode((7, 200, 12, {"Total": 2, "Changed": allocs_with_encoded_jobs(snap, allocs, _msgpack)}))
    spliced = _msgpack.encode((7, 200, 12, {"Total": 2, "Changed": msgspec.Raw(
        encode_allocs_with_jobs(snap, allocs, _msgpack))}))
    assert inline == spliced
    got = msgspec.msgpack.decode(inline)[3]["Changed"]
    assert [a["ID"] for a in got] == [a.id for a in allocs] and [a["Job"]["ID"] for a in got] == [job.id] * 2
    assert allocs[1].job is None  # the stored allocs are not changed
