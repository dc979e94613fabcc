"""What the cluster-facing CLI commands share: connect, pick a namespace, read Pitboss objects.

Used by ``pitboss status``, ``events``, ``explain`` and ``trace export
--policy``. The client is the official ``kubernetes`` one, configured the way
``pitboss operator run`` is (in-cluster inside a Pod, else ``--kubeconfig`` /
``$KUBECONFIG`` / ``~/.kube/config``). Errors speak the project's vocabulary:
an unreachable API server or an unknown policy is bad input (exit 2, naming
the flag); a 403 or another refusal is a runtime failure (exit 1).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer

from controller.errors import InputError, PermanentError, RetryableError
from controller.operator.resources import EVENT_PLURAL, GROUP, POLICY_PLURAL, VERSION, LabelSelector, parse_event
from controller.targets.base import ScaleConflict, TargetNotFound
from forecasting.base import Event

T = TypeVar("T")
TIMEOUT = 10  # seconds per API request: a CLI never hangs on a dead cluster
SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

KubeconfigOption = typer.Option(None, "--kubeconfig", help="kubeconfig file (default: in-cluster, else $KUBECONFIG "
                                "or ~/.kube/config)")
ContextOption = typer.Option(None, "--context", help="kubeconfig context")


class Cluster:
    """An ApiClient plus the namespace commands default to."""

    def __init__(self, kubeconfig: Path | None, context: str | None) -> None:
        from cli.operator_cmd import _api_client  # the operator's own loading rules, one place

        self.api = _api_client(kubeconfig, context)
        self.host = str(self.api.configuration.host)
        self.kubeconfig, self.context = kubeconfig, context

    def close(self) -> None:
        self.api.close()

    def default_namespace(self) -> str:
        """The kubeconfig context's namespace (or the Pod's), else ``default``, as kubectl does."""
        from kubernetes import config

        if self.kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST") and SA_NAMESPACE.is_file():
            return SA_NAMESPACE.read_text().strip() or "default"
        path = self.kubeconfig or Path(os.environ.get("KUBECONFIG", "~/.kube/config")).expanduser()
        try:
            contexts, active = config.list_kube_config_contexts(config_file=str(path))
        except Exception:
            return "default"
        chosen = next((c for c in contexts if c.get("name") == self.context), active) if self.context else active
        return str(((chosen or {}).get("context") or {}).get("namespace") or "default")

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call the client; unreachable -> InputError (exit 2), 5xx and refusals -> PermanentError (exit 1).

        404 stays ``TargetNotFound`` and 409 ``ScaleConflict`` for the caller to name.
        """
        from controller.targets.kubernetes import call_api

        try:
            return call_api(fn, what, *args, _request_timeout=TIMEOUT, **kwargs)
        except ScaleConflict:
            raise  # 409: the caller knows what it means (already exists, changed since read)
        except RetryableError as exc:
            if "cannot reach" in str(exc):
                raise InputError(f"cannot reach the cluster at {self.host}: {_root(exc)}",
                                 field="--kubeconfig") from None
            raise PermanentError(str(exc)) from None

    @property
    def custom(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api)

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api)

    def list_custom(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        """Every ``plural`` object in ``namespace`` (all namespaces when None), sorted by namespace and name."""
        if namespace:
            listed: Any = self.call(f"list {plural} in {namespace}", self.custom.list_namespaced_custom_object,
                                    GROUP, VERSION, namespace, plural)
        else:
            listed = self.call(f"list {plural}", self.custom.list_cluster_custom_object, GROUP, VERSION, plural)
        items = list((listed or {}).get("items") or [])
        return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"].get("name", "")))

    def policies(self, namespace: str | None) -> list[dict[str, Any]]:
        return self.list_custom(POLICY_PLURAL, namespace)

    def traffic_events(self, namespace: str | None) -> list[dict[str, Any]]:
        return self.list_custom(EVENT_PLURAL, namespace)

    def policy(self, namespace: str, name: str) -> dict[str, Any]:
        """One ScalingPolicy; InputError (exit 2) naming it when it does not exist."""
        try:
            obj: Any = self.call(f"scalingpolicy/{name} in {namespace}", self.custom.get_namespaced_custom_object,
                                 GROUP, VERSION, namespace, POLICY_PLURAL, name)
        except TargetNotFound:
            known = [p["metadata"]["name"] for p in self.policies(namespace)]
            hint = f"; policies there: {', '.join(known)}" if known else "; there is none there"
            raise InputError(f"no ScalingPolicy {name!r} in namespace {namespace!r}{hint}", field="POLICY") from None
        return dict(obj)

    def object_events(self, namespace: str | None, kind: str, name: str | None = None) -> list[dict[str, Any]]:
        """core/v1 Events about objects of ``kind`` (one ``name``, or all), oldest first.

        Filtered here rather than with an involvedObject field selector, so it
        reads the same from every API server (and the test emulator).
        """
        if namespace:
            listed: Any = self.call(f"list events in {namespace}", self.core.list_namespaced_event, namespace)
        else:
            listed = self.call("list events", self.core.list_event_for_all_namespaces)
        raw = self.api.sanitize_for_serialization(listed)
        out = []
        for item in raw.get("items") or []:
            obj = item.get("involvedObject") or {}
            if obj.get("kind") == kind and (name is None or obj.get("name") == name):
                out.append(item)
        return sorted(out, key=event_time)


def selected_events(traffic: list[dict[str, Any]], selector: LabelSelector | None) -> list[Event]:
    """The TrafficEvents (raw objects) a policy's eventSelector picks, as forecasting Events (invalid ones skipped)."""
    out = []
    for raw in traffic:
        try:
            event = parse_event(raw)
        except ValueError:
            continue
        if selector is None or selector.matches(event.labels):
            out.append(event)
    return out


def event_time(event: dict[str, Any]) -> tuple[str, str]:
    """Sort key of a core/v1 Event: its last time (any of the stamps the API fills), then its name."""
    meta = event.get("metadata") or {}
    stamp = (event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
             or meta.get("creationTimestamp") or "")
    return str(stamp), str(meta.get("name", ""))


def _root(exc: BaseException) -> str:
    """The innermost cause's message, short (urllib3's errors nest three deep)."""
    inner: BaseException = exc
    while inner.__cause__ is not None:
        inner = inner.__cause__
    text = str(inner).split(": ", 1)[-1] if "Connection refused" not in str(inner) else "connection refused"
    return text[:160]


@contextmanager
def connected(kubeconfig: Path | None, context: str | None) -> Iterator[Cluster]:
    """A Cluster for one command, closed afterwards."""
    cluster = Cluster(kubeconfig, context)
    try:
        yield cluster
    finally:
        cluster.close()
