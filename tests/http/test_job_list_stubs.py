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
