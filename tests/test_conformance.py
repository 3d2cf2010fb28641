"""The MMIO guard conformance suite (spec sections 2 to 6), one test per guest.

Each guest under ``src/mmioguard/guests/conf_*`` checks its rules from inside the VM and prints
TAP; the settings it runs under and the checks made on the VMM's trace live in
:mod:`mmioguard.conformance`, which ``mmioguard conformance`` runs too. A test passes when the run
ends as the setting expects, every TAP line is ``ok``, the plan is met and the trace checks hold.
A setting with a ``known_failure`` (a hypervisor bug) is a strict xfail.
"""

from __future__ import annotations

import io

import pytest

from mmioguard import conformance
from mmioguard.conformance import GUESTS, ConformanceGuest, Setting, check_run, run_guest


def settings_of(name: str) -> list[object]:
    guest = conformance.find_guest(name)
    params: list[object] = []
    for setting in guest.settings:
        marks = []
        if setting.known_failure:
            marks.append(pytest.mark.xfail(strict=True, reason=setting.known_failure))
        params.append(pytest.param(setting, id=setting.label, marks=marks))
    return params


def run_and_check(name: str, setting: Setting) -> conformance.GuestRun:
    guest = conformance.find_guest(name)
    run = run_guest(guest, setting)
    problems = check_run(guest, setting, run)
    assert not problems, "\n".join([*problems, "--- guest output ---", run.output])
    return run


@pytest.mark.parametrize("setting", settings_of("conf_discovery"))
def test_discovery(setting: Setting) -> None:
    run_and_check("conf_discovery", setting)


@pytest.mark.parametrize("setting", settings_of("conf_info"))
def test_info_per_granule(setting: Setting) -> None:
    run_and_check("conf_info", setting)


@pytest.mark.parametrize("setting", settings_of("conf_map_unmap"))
def test_map_unmap(setting: Setting) -> None:
    run_and_check("conf_map_unmap", setting)


@pytest.mark.parametrize("setting", settings_of("conf_abort_el1"))
def test_abort_from_el1(setting: Setting) -> None:
    run_and_check("conf_abort_el1", setting)


@pytest.mark.parametrize("setting", settings_of("conf_abort_el0"))
def test_abort_from_el0(setting: Setting) -> None:
    run_and_check("conf_abort_el0", setting)


@pytest.mark.parametrize("setting", settings_of("conf_isv0"))
def test_isv0_aborts_once_enrolled(setting: Setting) -> None:
    run_and_check("conf_isv0", setting)


@pytest.mark.parametrize("setting", settings_of("conf_nisv"))
def test_nisv_policies_before_enrollment(setting: Setting) -> None:
    run_and_check("conf_nisv", setting)


@pytest.mark.parametrize("setting", settings_of("conf_straddle"))
def test_straddling_access(setting: Setting) -> None:
    run_and_check("conf_straddle", setting)


# The "RTC granule edges" setting: unaligned accesses at a device granule's edge, which
# Unicorn splits into pieces; the guard must decide on the whole access. Each rule on its own.

@pytest.fixture(scope="module")
def device_edge() -> tuple[conformance.GuestRun, list[str]]:
    guest = conformance.find_guest("conf_straddle")
    setting = next(s for s in guest.settings if s.label == "RTC granule edges")
    run = run_guest(guest, setting)
    return run, check_run(guest, setting, run)


def tap_line(output: str, name: str) -> str:
    lines = [line for line in output.splitlines() if name in line and "ok " in line]
    assert len(lines) == 1, (name, output)
    return lines[0]


def test_device_edge_rules_that_hold(device_edge: tuple[conformance.GuestRun, list[str]]) -> None:
    run, _ = device_edge
    assert not [line for line in run.output.splitlines() if line.startswith("not ok")]
    assert tap_line(run.output, "8-byte load at RTC+0xffc, next").startswith("ok")
    assert tap_line(run.output, "8-byte store at RTC+0xffc, next").startswith("ok")
    assert tap_line(run.output, "8-byte load at RTC+0xff3").startswith("ok")
    assert tap_line(run.output, "RTC+0xffc, both mapped").startswith("ok")


def test_device_edge_aborted_load_reaches_no_device(
    device_edge: tuple[conformance.GuestRun, list[str]],
) -> None:
    _, problems = device_edge
    assert not [p for p in problems if "FAR 0x9010ffc" in p]


def test_device_edge_unaligned_store_inside_the_granule(
    device_edge: tuple[conformance.GuestRun, list[str]],
) -> None:
    run, problems = device_edge
    assert not [p for p in problems if "FAR 0x9010ff3" in p]
    assert tap_line(run.output, "store at RTC+0xff3").startswith("ok")


def test_device_edge_load_from_unassigned_into_the_device(
    device_edge: tuple[conformance.GuestRun, list[str]],
) -> None:
    run, _ = device_edge
    assert tap_line(run.output, "load at RTC-4").startswith("ok")


@pytest.mark.parametrize("setting", settings_of("conf_fetch"))
def test_fetch_outside_memory(setting: Setting) -> None:
    run_and_check("conf_fetch", setting)


@pytest.mark.parametrize("setting", settings_of("conf_refcount"))
def test_refcounted_client(setting: Setting) -> None:
    run_and_check("conf_refcount", setting)


@pytest.mark.parametrize("setting", settings_of("conf_signext"))
def test_sign_extending_loads(setting: Setting) -> None:
    run_and_check("conf_signext", setting)


@pytest.mark.parametrize("setting", settings_of("conf_reset"))
def test_system_reset_forgets_the_guard(setting: Setting) -> None:
    run_and_check("conf_reset", setting)


@pytest.mark.parametrize("setting", settings_of("conf_vm_wide"))
def test_guard_state_is_per_vm(setting: Setting) -> None:
    run_and_check("conf_vm_wide", setting)


@pytest.mark.parametrize("setting", settings_of("conf_profiles"))
def test_profiles_from_their_own_guests(setting: Setting) -> None:
    run_and_check("conf_profiles", setting)


def test_every_conformance_guest_has_a_test() -> None:
    from mmioguard.guests.build import guest_names

    tested = {
        "conf_discovery", "conf_info", "conf_map_unmap", "conf_abort_el1", "conf_abort_el0",
        "conf_isv0", "conf_nisv", "conf_straddle", "conf_fetch", "conf_refcount",
        "conf_signext", "conf_reset", "conf_vm_wide", "conf_profiles",
    }
    on_disk = {n for n in guest_names() if n.startswith("conf_")}
    assert on_disk == {g.name for g in GUESTS} == tested


def test_parse_tap() -> None:
    tap = conformance.parse_tap(
        "1..3\nok 1 - a\nnot ok 2 - b (got 0x1, want 0x2)\nok 3 - # SKIP c\n# 3 tests\nFAIL\n"
    )
    assert tap.planned == 3 and tap.passed == 2 and tap.skipped == 1 and tap.ran == 3
    assert tap.failures == ("not ok 2 - b (got 0x1, want 0x2)",) and tap.verdict == "FAIL"


def test_suite_summary_reports_a_failing_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_suite's table and status, on a stand-in suite: one passing and one failing run."""
    passing = Setting("default")
    failing = Setting("wrong status", status=conformance.ExitStatus.GUEST)
    guest = ConformanceGuest("conf_signext", "test", (passing, failing))
    monkeypatch.setattr(conformance, "GUESTS", (guest,))
    out = io.StringIO()
    assert conformance.run_suite(out) == 1
    text = out.getvalue()
    assert "guest" in text and "settings" in text and "passed" in text and "time" in text
    assert "conf_signext  default" in text and "FAIL" in text
    assert "2 runs of 1 guests" in text and "1 runs passed, 1 failed" in text


def _untraced_settings() -> list[tuple[conformance.ConformanceGuest, conformance.Setting]]:
    return [
        (guest, setting)
        for guest in conformance.GUESTS
        for setting in guest.settings
        if not setting.traced
    ]


@pytest.mark.parametrize(
    ("guest", "setting"),
    _untraced_settings(),
    ids=[f"{g.name}-{s.label}" for g, s in _untraced_settings()],
)
def test_native_and_pure_python_agree(
    guest: conformance.ConformanceGuest, setting: conformance.Setting
) -> None:
    """Differential: the same untraced run with the native fast path and without it."""
    native = conformance.run_guest(guest, setting, native=True)
    pure = conformance.run_guest(guest, setting, native=False)
    assert native.output == pure.output
    assert native.outcome.status == pure.outcome.status
    assert native.outcome.reason == pure.outcome.reason
    assert native.machine.backends[0].gprs() == pure.machine.backends[0].gprs()
