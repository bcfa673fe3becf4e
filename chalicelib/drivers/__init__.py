"""Container drivers: the interface (base.py) and kubernetes.py, ecs.py, local.py.

`driver_for(namespace)` picks the driver the operator configured for a namespace (`VAMP_DRIVER`,
and per namespace `VAMP_NAMESPACE_DRIVERS`; the local driver is refused on Lambda unless
`VAMP_ALLOW_LOCAL_DRIVER=true`), wrapped so that no driver error escapes as anything but a
`DriverError` (deploy/undeploy) or a failed status with a reason (status/running).
`admission(namespace, dialects)` is what the API asks before it stores a deployment: what the
namespace's driver would refuse, as (path, reason) (docs/decisions/0026).
Heavy clients (kubernetes, boto3) are imported inside the drivers, on first use.
"""
from __future__ import annotations

import logging
import threading

from chalicelib.drivers.base import (
    Driver,
    DriverError,
    JobResult,
    JobRunner,
    JobSpec,
    ServiceSpec,
    ServiceStatus,
    failed,
)
from chalicelib.drivers.kube_policy import KubeRules, dialect_problems
from chalicelib.settings import settings

log = logging.getLogger(__name__)

_DRIVERS: dict[str, Driver] = {}
_LOCK = threading.Lock()


def _build(kind: str) -> Driver:
    # Only the chosen driver's module is imported: each loads its own client library
    # (kubernetes, boto3's ECS) at import, which no other driver's Lambda should pay for.
    if kind == "local":
        from chalicelib.drivers.local import LocalDriver

        return LocalDriver()
    if kind == "kubernetes":
        from chalicelib.drivers.kubernetes import KubernetesDriver

        return KubernetesDriver.from_settings()
    if kind == "ecs":
        from chalicelib.drivers.ecs import EcsDriver

        return EcsDriver.from_settings()
    raise DriverError(f"unknown driver {kind!r}")


def driver_for(namespace: str) -> "Guarded":
    try:
        kind = settings().driver_for(namespace)
    except ValueError as e:
        return Guarded(None, str(e))
    with _LOCK:
        if kind not in _DRIVERS:
            try:
                _DRIVERS[kind] = _build(kind)
            except Exception as e:  # noqa: BLE001 - becomes the reason in every status
                log.exception("driver %s unavailable", kind)
                return Guarded(None, f"{kind} driver unavailable: {e}")
        return Guarded(_DRIVERS[kind])


def admission(namespace: str, dialects: list[tuple[str, dict]]) -> list[tuple[str, str]]:
    """What the namespace's driver would refuse of a deployment, as [(path, reason)], before
    anything is stored: no driver it may use here (`namespace`), a Kubernetes namespace it
    cannot have, and every `dialects.kubernetes` (given as (path of the dialects, dialects))
    the namespace's policy refuses: checked whatever the namespace's driver is today, since
    the operator may move the namespace to Kubernetes (the driver checks again at deploy)."""
    s = settings()
    try:
        kind = s.driver_for(namespace)
    except ValueError as e:
        return [("namespace", str(e))]
    rules = KubeRules.from_settings(s)
    problems: list[tuple[str, str]] = []
    try:
        if kind == "kubernetes":
            rules.namespace(namespace)
        policy = rules.policy(namespace)
    except ValueError as e:
        return [("namespace", str(e))]
    for path, given in dialects:
        if isinstance(given, dict) and "kubernetes" in given:
            problems += [(f"{path}.kubernetes{sub}", reason) for sub, reason in
                         dialect_problems(given["kubernetes"], policy)]
    return problems


def reset() -> None:
    """Forget built drivers (tests switch settings)."""
    with _LOCK:
        _DRIVERS.clear()


class Guarded:
    """A driver whose every failure is a DriverError or a status with a reason, never a crash."""

    def __init__(self, driver: Driver | None, unavailable: str | None = None):
        self.driver, self.unavailable = driver, unavailable
        self.name = driver.name if driver is not None else "unavailable"

    def _need(self) -> Driver:
        if self.driver is None:
            raise DriverError(self.unavailable or "no driver")
        return self.driver

    def deploy(self, namespace: str, spec: ServiceSpec) -> None:
        try:
            self._need().deploy(namespace, spec)
        except DriverError:
            raise
        except Exception as e:  # noqa: BLE001
            log.exception("deploy %s failed", spec.key)
            raise DriverError(f"{self.name}: {type(e).__name__}: {e}") from e

    def undeploy(self, namespace: str, deployment: str, cluster: str, service: str) -> None:
        try:
            self._need().undeploy(namespace, deployment, cluster, service)
        except DriverError:
            raise
        except Exception as e:  # noqa: BLE001
            log.exception("undeploy %s/%s/%s failed", deployment, cluster, service)
            raise DriverError(f"{self.name}: {type(e).__name__}: {e}") from e

    def status(self, namespace: str, keys: list[str]) -> dict[str, ServiceStatus]:
        try:
            found = self._need().status(namespace, keys)
        except Exception as e:  # noqa: BLE001
            reason = str(e) if isinstance(e, DriverError) else f"{self.name}: {type(e).__name__}: {e}"
            return {k: failed(k, reason) for k in keys}
        return {k: found.get(k) or ServiceStatus(key=k, state="absent") for k in keys}

    def run_job(self, namespace: str, spec: JobSpec, timeout: float) -> JobResult:
        """A one-off run (0039); a driver without one-off runs, or one that fails, is a failed result."""
        driver = self.driver
        if driver is None or not isinstance(driver, JobRunner):
            return JobResult("failed", reason=self.unavailable or f"the {self.name} driver has no one-off runs")
        try:
            return driver.run_job(namespace, spec, timeout)
        except DriverError as e:
            return JobResult("failed", reason=str(e))
        except Exception as e:  # noqa: BLE001
            log.exception("run of %s failed", spec.name)
            return JobResult("failed", reason=f"{self.name}: {type(e).__name__}: {e}")

    def stop_overdue_jobs(self, namespace: str) -> list[str]:
        """Stop the one-off runs past their deadline where the driver cannot (ECS: no task timeout)."""
        return self._optional_list("stop_overdue_jobs", namespace, "stopping overdue runs")

    def finished_jobs(self, namespace: str) -> list:
        """Asynchronous runs that ended, as the driver reports them ([] when it cannot tell)."""
        return self._optional_list("finished_jobs", namespace, "listing finished runs")

    def forget_job(self, namespace: str, handle: str) -> None:
        """A reported run's remains removed where the driver keeps them (a Kubernetes Job); a
        failure is logged (the driver's own expiry removes them later)."""
        call = getattr(self.driver, "forget_job", None)
        if call is None:
            return
        try:
            call(namespace, handle)
        except Exception:  # noqa: BLE001 - ttlSecondsAfterFinished removes it anyway
            log.exception("removing the run %s in %s failed", handle, namespace)

    def _optional_list(self, method: str, namespace: str, doing: str) -> list:
        """The driver's `method` where it has one, else []; a failure logged and [] (the next run asks again)."""
        call = getattr(self.driver, method, None)
        if call is None:
            return []
        try:
            return call(namespace)
        except Exception:  # noqa: BLE001 - the next run tries again
            log.exception("%s in %s failed", doing, namespace)
            return []

    def running(self, namespace: str) -> dict[str, str | None] | None:
        """None when the driver cannot tell (then sync asks `status` for every key)."""
        try:
            return self._need().running(namespace)
        except Exception:  # noqa: BLE001
            log.exception("listing %s failed", namespace)
            return None


    # --- daemon workflows (0043) ---
    def _daemon_runner(self):
        from chalicelib.drivers.base import DaemonRunner  # here: this hunk stays one piece

        driver = self._need()
        if not isinstance(driver, DaemonRunner):
            raise DriverError(f"the {self.name} driver runs no daemons")
        return driver

    def run_daemon(self, namespace: str, spec: JobSpec) -> str:
        try:
            return self._daemon_runner().run_daemon(namespace, spec)
        except DriverError:
            raise
        except Exception as e:  # noqa: BLE001
            log.exception("daemon %s failed to start", spec.name)
            raise DriverError(f"{self.name}: {type(e).__name__}: {e}") from e

    def stop_daemon(self, namespace: str, name: str) -> None:
        try:
            self._daemon_runner().stop_daemon(namespace, name)
        except DriverError:
            raise
        except Exception as e:  # noqa: BLE001
            log.exception("daemon %s failed to stop", name)
            raise DriverError(f"{self.name}: {type(e).__name__}: {e}") from e

    def daemons(self, namespace: str) -> dict | None:
        """None when the driver cannot tell (the pass then changes nothing)."""
        try:
            return self._daemon_runner().daemons(namespace)
        except Exception:  # noqa: BLE001
            log.exception("listing the daemons of %s failed", namespace)
            return None


__all__ = ["Driver", "DriverError", "Guarded", "JobResult", "JobSpec", "ServiceSpec", "ServiceStatus", "admission", "driver_for", "reset"]
