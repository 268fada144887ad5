"""Fixtures shared across test directories: real etcd clusters for the HA tests."""

import os

import pytest

from yurt.state.etcd.cluster import EtcdCluster, etcd_binary


def _require_etcd() -> None:
    """Skip without etcd, unless YURT_REQUIRE_ETCD=1 (CI) makes that a failure."""
    if etcd_binary() is None:
        if os.environ.get("YURT_REQUIRE_ETCD") == "1":
            pytest.fail("YURT_REQUIRE_ETCD=1 but etcd is not installed (apt-get install etcd-server)")
        pytest.skip("etcd is not installed")


@pytest.fixture
def etcd_cluster(tmp_path):
    """A real 3-member etcd cluster on loopback ports for one test."""
    _require_etcd()
    cluster = EtcdCluster.create(str(tmp_path / "etcd")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def etcd_endpoints(tmp_path_factory):
    """The client endpoints of a 3-member etcd cluster shared by a test module."""
    _require_etcd()
    cluster = EtcdCluster.create(str(tmp_path_factory.mktemp("etcd"))).start()
    yield cluster.endpoints
    cluster.stop()
