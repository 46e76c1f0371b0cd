#!/usr/bin/env python3
"""test_cluster_ha.py - the cluster with three RabbitMQ nodes (scripts/cluster
up --ha) loses one of them, under load (DESIGN §2, §7).

- cluster_up: `up --ha`; every process up; the load of test_cluster.py
  (20 every-1s tasks, one-time http tasks created ~8 a second).
- rabbitmq_node_lost: SIGKILL rabbit-1, the first node of every process's
  queue URL (so every connection moves) and, the queues being declared
  through it, their likely leader.  Two nodes remain, a majority: nothing is
  lost, no occurrence appears twice, every due run starts within 10 s.
  rabbit-1 stays down 10 s, then is started again and rejoins.
- cluster_down: the contract over the whole run; `down` stops everything.

Every process's queue URL says partitions=2 (SKED_QUEUE_PARTITIONS, read by
scripts/cluster): each sked queue, the events queue included, is two
quorum queues, so the node loss also hits consumers of several queues on
one channel and publishers taking partitions in turn (test_cluster.py
keeps one).

Run: python3 tests/integration/test_cluster_ha.py [TEST_NAME...]
"""
import os
import sys
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skedtest import Suite, wait_until  # noqa: E402
from clustertest import (bring_down, bring_up, check_invariants, run_suite,  # noqa: E402
                         wait_state)

S = Suite("test_cluster_ha", timeout=90)
os.environ["SKED_QUEUE_PARTITIONS"] = "2"   # scripts/cluster's queue URL
C = {"cluster": None, "load": None}


@S.test(timeout=240)
def cluster_up():
    bring_up(S, C, ha=True)
    S.check("partitions=2" in C["cluster"].env.get("SKED_QUEUE_URL", ""),
            "the queue URL says partitions=2: %s" % C["cluster"].env.get("SKED_QUEUE_URL"))


@S.test(timeout=120)
def rabbitmq_node_lost():
    c = C["cluster"]
    if c is None or not c.is_up:
        raise AssertionError("the cluster is not up (see cluster_up)")
    load = C["load"]
    t_kill = time.time()
    c.kill("rabbit-1")
    cl = c.client()
    ready = wait_until(lambda: cl.get("/readyz").status == 200, 10.0, 0.2)
    print("  rabbitmq_node_lost: /readyz through the load balancer 200 again %.1f s after "
          "the kill" % (time.time() - t_kill), flush=True)
    S.check(ready, "the api is ready again within 10 s with 2 of 3 RabbitMQ nodes")
    time.sleep(max(0.0, t_kill + 10.0 - time.time()))
    check_invariants(S, c, load, "rabbitmq_node_lost (2 of 3 nodes)", since=t_kill - 5,
                     until=t_kill + 10)
    t0 = time.time()
    c.start("rabbit-1")
    wait_state(c, "rabbit-1", "up", 10)
    print("  rabbitmq_node_lost: rabbit-1 back in %.1f s" % (time.time() - t0), flush=True)
    check_invariants(S, c, load, "rabbitmq_node_lost (rabbit-1 back)", since=t0 - 2,
                     until=time.time() + 2)


@S.test(timeout=120)
def cluster_down():
    bring_down(S, C)


if __name__ == "__main__":
    run_suite(S, C)
