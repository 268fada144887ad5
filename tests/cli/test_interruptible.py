"""`interruptible()`: ^C ends a follow loop even in a process started with SIGINT ignored."""

import signal
import subprocess
import sys
import textwrap

from yurt.cli.command import interruptible

CHILD = textwrap.dedent("""
    import signal, sys, time
    from yurt.cli.command import interruptible
    try:
        with interruptible():
            print("ready", flush=True)
            time.sleep(30)
        print("slept")
    except KeyboardInterrupt:
        print("interrupted")
    print("after:", signal.getsignal(signal.SIGINT) is signal.SIG_IGN, flush=True)
""")


def test_sigint_ends_the_block_though_the_process_started_with_it_ignored():
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert out.splitlines() == ["interrupted", "after: True"]  # and ignored again afterwards


def test_a_handler_already_there_is_left_alone():
    seen = []
    previous = signal.signal(signal.SIGINT, lambda *_: seen.append(1))
    try:
        handler = signal.getsignal(signal.SIGINT)
        with interruptible():
            assert signal.getsignal(signal.SIGINT) is handler
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, previous)
