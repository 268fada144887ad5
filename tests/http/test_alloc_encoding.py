"""`http.alloc_encoding`: each job version encoded once per encoder, and an answer decodes to
the allocs with their jobs whichever job was encoded just before."""

import msgspec

from yurt.http.alloc_encoding import encode_allocs_with_jobs, encoded_job
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
