"""GET /v1/jobs' stubs: CPU to build the 1,000 job stubs (and to encode them) when 10 summaries
change between listings, as in W1 (the jobs being placed), with the per-job stub reuse and without."""
import time, statistics
from yurt.http.routes_jobs import job_list_stubs
from yurt.http.wire import job_list_stub, json_response
from yurt.structs import JobSummary, TaskGroupSummary, to_wire
from yurt.testing.mock import mock_job
import msgspec
jobs = [mock_job(id=f"job-{i:04d}") for i in range(1000)]
summ = {(j.namespace, j.id): JobSummary(job_id=j.id, namespace=j.namespace, summary={"web": TaskGroupSummary(running=i)}) for i, j in enumerate(jobs)}
class S:
    def job_summary(self, ns, i): return summ.get((ns, i))
snap = S()
enc = msgspec.json.Encoder()
def old(): return [job_list_stub(j, snap.job_summary(j.namespace, j.id)) for j in jobs]
def new(): return job_list_stubs(snap, jobs)
for name, fn in (("old", old), ("new", new), ("old", old), ("new", new)):
    ts, te = [], []
    for r in range(30):
        for k in range(10):  # 10 jobs' summaries change between listings (W1: the jobs being placed)
            key = (jobs[(r * 10 + k) % 1000].namespace, jobs[(r * 10 + k) % 1000].id)
            summ[key] = JobSummary(job_id=key[1], namespace=key[0], summary={"web": TaskGroupSummary(running=r)})
        t0 = time.process_time(); out = fn(); t1 = time.process_time(); enc.encode(out); t2 = time.process_time()
        ts.append(t1 - t0); te.append(t2 - t1)
    print(name, "stubs ms median %.2f" % (statistics.median(ts) * 1e3), "encode ms median %.2f" % (statistics.median(te) * 1e3))
