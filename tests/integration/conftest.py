import pytest

from .agents import AgentProcess, kill_task_processes


@pytest.fixture
def cluster(tmp_path):
    """Factory for agent processes; everything is stopped and task processes reaped at the end."""
    started: list[AgentProcess] = []

    def make(name: str, mode: str, **kwargs) -> AgentProcess:
        agent = AgentProcess(tmp_path, name, mode, **kwargs)
        started.append(agent)
        return agent

    yield make
    for agent in reversed(started):
        agent.kill()
    kill_task_processes(tmp_path)


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
