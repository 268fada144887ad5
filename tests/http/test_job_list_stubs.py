"""`GET /v1/jobs` reuses a job's stub only while its job and summary are the objects it was
made from: a changed summary or job is listed as it is now."""
from yurt.http.routes_jobs import job_list_stubs
from yurt.http.wire import job_list_stub
from yurt.structs import JobSummary, TaskGroupSummary, evolve
from yurt.testing.mock import mock_job


class _Snap:
    def __init__(self, summaries):
        self.summaries = summaries

    def job_summary(self, namespace, job_id):
        return self.summaries.get((namespace, job_id))


def _summary(job, running):
    return JobSummary(job_id=job.id, namespace=job.namespace,
                      summary={"web": TaskGroupSummary(running=running)})


def test_unchanged_stubs_are_reused_and_changed_ones_rebuilt():
    jobs = [mock_job(id=f"job-{i}") for i in range(3)]
    summaries = {(j.namespace, j.id): _summary(j, 0) for j in jobs}
    first = job_list_stubs(_Snap(summaries), jobs)
    assert first == [job_list_stub(j, summaries[(j.namespace, j.id)]) for j in jobs]

    again = job_list_stubs(_Snap(summaries), jobs)
    assert all(a is b for a, b in zip(first, again))  # nothing changed: the same stubs

    # a summary replaced (allocs of job-0 now running) and a job replaced (job-2 stopped)
    key0 = (jobs[0].namespace, jobs[0].id)
    summaries[key0] = _summary(jobs[0], 7)
    jobs[2] = evolve(jobs[2], stop=True, status="dead")
    now = job_list_stubs(_Snap(summaries), jobs)
    assert now == [job_list_stub(j, summaries[(j.namespace, j.id)]) for j in jobs]
    assert now[0]["JobSummary"]["Summary"]["web"]["Running"] == 7
    assert now[2]["Stop"] is True and now[2]["Status"] == "dead"
    assert now[1] is first[1]


def test_a_job_gone_and_back_with_an_equal_summary_is_listed_from_its_new_objects():
    job = mock_job(id="job")
    summaries = {(job.namespace, job.id): _summary(job, 1)}
    job_list_stubs(_Snap(summaries), [job])
    job_list_stubs(_Snap({}), [])  # purged: the listing forgets it
    new_job = evolve(job, priority=90)
    out = job_list_stubs(_Snap({(job.namespace, job.id): _summary(job, 1)}), [new_job])
    assert out[0]["Priority"] == 90


def test_listing_json_is_the_stub_list_encoded_with_changed_stubs_reencoded():
    import msgspec

    from yurt.http.routes_jobs import job_list_json

    jobs = [mock_job(id=f"job-{i}") for i in range(5)]
    summaries = {(j.namespace, j.id): _summary(j, 0) for j in jobs}
    encode = msgspec.json.Encoder().encode
    assert job_list_json(_Snap(summaries), jobs) == encode(job_list_stubs(_Snap(summaries), jobs))
    summaries[(jobs[3].namespace, jobs[3].id)] = _summary(jobs[3], 9)
    jobs[1] = evolve(jobs[1], priority=70)
    out = job_list_json(_Snap(summaries), jobs)
    assert out == encode([job_list_stub(j, summaries[(j.namespace, j.id)]) for j in jobs])
    assert b'"Running":9' in out and b'"Priority":70' in out
    assert job_list_json(_Snap({}), []) == b"[]" == encode([])


async def test_get_jobs_bytes_are_the_list_paths_bytes(api):
    """The plain listing (kept JSON per stub) answers byte for byte what the list path
    (`?reverse=false`: filter/page code, one encode of the whole list) answers."""
    from api_helpers import register

    for i in range(4):
        await register(api, job_id=f"web-{i}")
    for _ in range(2):
        plain = await api.get("/v1/jobs")
        listed = await api.get("/v1/jobs?reverse=false")
        assert plain.status == listed.status == 200
        assert await plain.read() == await listed.read()
        assert plain.headers["Content-Type"] == listed.headers["Content-Type"] == "application/json"
        assert plain.headers["X-Nomad-Index"] == listed.headers["X-Nomad-Index"]
        await register(api, job_id="web-1", priority=80)  # a changed job between listings
    body = await (await api.get("/v1/jobs?prefix=web-1")).json()
    assert [j["ID"] for j in body] == ["web-1"] and body[0]["Priority"] == 80
