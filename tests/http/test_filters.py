"""`?filter=` (go-bexpr subset) and pagination on list routes."""

import pytest

from api_helpers import register
from yurt.http.filter_expr import compile_filter
from yurt.server.endpoints import EndpointError

ITEM = {"ID": "a1", "Status": "running", "Count": 3, "Stop": False, "Tags": ["web", "prod"],
        "Meta": {"owner": "ops"}, "Name": "web-12", "Empty": ""}


@pytest.mark.parametrize("expr, expected", [
    ('Status == "running"', True),
    ('Status != "running"', False),
    ('Count == 3', True),
    ('Stop == false', True),
    ('"web" in Tags', True),
    ('"db" not in Tags', True),
    ('Meta.owner == "ops"', True),
    ('Meta["owner"] == "dev"', False),
    ('Name contains "eb-"', True),
    ('Name not contains "db"', True),
    ('Name matches "^web-[0-9]+$"', True),
    ('Empty is empty and Missing is empty', True),
    ('Tags is not empty', True),
    ('Status == "dead" or (Count == 3 and not Stop == true)', True),
    ('not (Status == "running")', False),
])
def test_filter_expressions(expr, expected):
    assert compile_filter(expr)(ITEM) is expected


@pytest.mark.parametrize("bad", ['Status ==', 'Status ~ "x"', '(Status == "a"', '== "x"'])
def test_bad_filter_is_400(bad):
    with pytest.raises(EndpointError) as err:
        compile_filter(bad)
    assert err.value.status == 400


async def test_filter_and_pagination_on_routes(api):
    for name in ("a", "b", "c", "d"):
        await register(api, f"job-{name}")
    ids = [j["ID"] for j in await (await api.get('/v1/jobs?filter=ID matches "job-[bc]"')).json()]
    assert ids == ["job-b", "job-c"]
    resp = await api.get("/v1/jobs?per_page=3")
    assert [j["ID"] for j in await resp.json()] == ["job-a", "job-b", "job-c"]
    token = resp.headers["X-Nomad-NextToken"]
    assert token == "job-d"
    resp = await api.get(f"/v1/jobs?per_page=3&next_token={token}")
    assert [j["ID"] for j in await resp.json()] == ["job-d"]
    assert "X-Nomad-NextToken" not in resp.headers
    resp = await api.get('/v1/evaluations?filter=JobID == "job-a"')
    assert [e["JobID"] for e in await resp.json()] == ["job-a"]
    resp = await api.get("/v1/jobs?filter=ID ==")
    assert resp.status == 400
