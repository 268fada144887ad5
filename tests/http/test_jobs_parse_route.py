"""POST /v1/jobs/parse: Variables as var-file text or a map, strictness, no filesystem."""

JOB = ('variable "n" {\n  type = number\n}\nvariable "tags" {\n  type = list(string)\n  default = []\n}\n'
       'job "p" {\n  group "g" {\n    count = var.n\n    task "t" {\n      driver = "raw_exec"\n'
       '      meta = { tags = join(",", var.tags) }\n    }\n  }\n}\n')


async def test_variables_as_var_file_text(api):
    resp = await api.post("/v1/jobs/parse", json={"JobHCL": JOB, "Variables": 'n = 3\ntags = ["a", "b"]\n'})
    assert resp.status == 200, await resp.text()
    job = await resp.json()
    assert job["TaskGroups"][0]["Count"] == 3
    assert job["TaskGroups"][0]["Tasks"][0]["Meta"] == {"tags": "a,b"}


async def test_variables_as_a_map_and_errors_with_lines(api):
    resp = await api.post("/v1/jobs/parse", json={"JobHCL": JOB, "Variables": {"n": "2"}})
    assert resp.status == 200 and (await resp.json())["TaskGroups"][0]["Count"] == 2
    resp = await api.post("/v1/jobs/parse", json={"JobHCL": JOB})
    assert resp.status == 400 and 'input.hcl:1,1-9: Unset variable "n"' in await resp.text()
    resp = await api.post("/v1/jobs/parse", json={"JobHCL": JOB, "Variables": "n = var.x\n"})
    assert resp.status == 400 and "may not be used here" in await resp.text()


async def test_no_filesystem_functions(api):
    text = 'job "f" {\n  meta = { x = file("/etc/hostname") }\n}\n'
    resp = await api.post("/v1/jobs/parse", json={"JobHCL": text})
    assert resp.status == 400 and 'no function named "file"' in await resp.text()
