import os
import stat

import pytest

from app.kiosk.instance import AlreadyRunning, InstanceLock
from app.kiosk.pin import PinError, PinGuard, PinHash, clear_pin, load_pin, pin_path, save_pin


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_pin_is_stored_hashed_and_private(tmp_path):
    path = save_pin(tmp_path, "4711")
    text = path.read_text()
    assert "4711" not in text and '"scheme": "scrypt"' in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    h = load_pin(tmp_path)
    assert h.matches("4711") and not h.matches("4712")
    # a second hash of the same PIN uses another salt
    assert PinHash.create("4711").salt != h.salt


@pytest.mark.parametrize("bad", ["12", "abcd", "1234567890123", "12 34"])
def test_bad_pins_are_refused(tmp_path, bad):
    with pytest.raises(PinError, match="4 to 12 digits"):
        save_pin(tmp_path, bad)
    assert not pin_path(tmp_path).exists()


def test_clear_pin(tmp_path):
    save_pin(tmp_path, "0000")
    assert clear_pin(tmp_path) and load_pin(tmp_path) is None and not clear_pin(tmp_path)


def test_guard_rate_limits_wrong_attempts():
    clock = FakeClock()
    guard = PinGuard(PinHash.create("2468"), free_attempts=3, base_delay=30, clock=clock)
    assert not guard.check("1111") and not guard.check("1111")
    assert guard.locked_for() == 0
    assert not guard.check("1111")  # third miss locks
    assert guard.locked_for() == 30
    assert not guard.check("2468"), "the right PIN is refused while locked"
    clock.t += 30
    assert not guard.check("9999")  # fourth miss: the wait doubles
    assert guard.locked_for() == 60
    clock.t += 60
    assert guard.check("2468") and guard.failures == 0


def test_guard_without_pin_unlocks_nothing():
    assert not PinGuard(None).check("1234")


def test_second_instance_is_detected_and_lock_dies_with_holder(tmp_path):
    first = InstanceLock.for_data_dir(tmp_path)
    first.acquire({"socket": "edge-station-abc"})
    with pytest.raises(AlreadyRunning) as info:
        InstanceLock.for_data_dir(tmp_path).acquire()
    assert info.value.holder["pid"] == os.getpid()
    assert info.value.holder["socket"] == "edge-station-abc"
    first.release()
    again = InstanceLock.for_data_dir(tmp_path)
    again.acquire()
    again.release()


def test_lock_is_released_when_the_holder_is_killed(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    code = (
        "import sys, time\n"
        "from app.kiosk.instance import InstanceLock\n"
        f"InstanceLock.for_data_dir({str(tmp_path)!r}).acquire()\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(AlreadyRunning) as info:
            InstanceLock.for_data_dir(tmp_path).acquire()
        assert info.value.holder["pid"] == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=5)
    deadline = time.monotonic() + 2
    lock = InstanceLock.for_data_dir(tmp_path)
    while True:
        try:
            lock.acquire()
            break
        except AlreadyRunning:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    lock.release()
