"""The policy protocol, the registry, and the three ways a policy gets in: a decorator, an entry point, a file.

A policy is any object with ``plan(scenario) -> specedge.plan.Plan``. A policy that changes the speculation length
between rounds also has ``controller(scenario, plan)``, returning an object with ``choose_l(BatchState) -> int``
(see :mod:`specedge.replay.controller`); :func:`replay` passes it to :func:`specedge.evaluate`.

Names resolve in this order (:func:`get_policy`):

1. policies registered in this process with :func:`register_policy` (the built-in ones register on first use);
2. the ``specedge.policies`` entry-point group: a third-party package declares
   ``[project.entry-points."specedge.policies"] my-policy = "my_pkg.module:MyPolicy"``;
3. ``path/to/file.py:ClassName`` (a policy in a file of one's own, no package needed);
4. a policy preset, ``path/to/preset.toml`` or the name of a preset in ``policies/`` (see :func:`load_preset`).

Parameters are keyword arguments of the policy's constructor; an unknown one is a :class:`PolicyError`.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from specedge.errors import PolicyError

ENTRY_POINT_GROUP = "specedge.policies"

#: Built-in policies, imported on first use so that ``import specedge`` and the CLI stay light.
BUILTINS: dict[str, str] = {
    "ad": "specedge.policies.baselines:ADServing",
    "sd-serial": "specedge.policies.baselines:SDSerial",
    "no-batching": "specedge.policies.baselines:NoBatching",
    "fixed-l": "specedge.policies.baselines:FixedL",
    "static-batching": "specedge.policies.baselines:StaticBatching",
    "max-batching": "specedge.policies.baselines:MaxBatching",
    "heuristic-batching": "specedge.policies.baselines:HeuristicBatching",
    "uniform-bandwidth": "specedge.policies.baselines:UniformBandwidth",
    "paper-dp": "specedge.policies.dp:PaperDP",
    "dp-per-batch-l": "specedge.policies.dp:PerBatchLDP",
    "dp-refined": "specedge.policies.refine:RefinedDP",
    "trace-aware": "specedge.policies.trace_aware:TraceAwareDP",
    "adaptive-l": "specedge.policies.adaptive:AdaptiveL",
    "oracle": "specedge.policies.oracle:Oracle",
}

#: What :func:`specedge.optimize` uses when no policy is named (chosen by measurement, see the README "Policies").
DEFAULT_POLICY = "dp-refined"

_REGISTRY: dict[str, Callable[..., Any]] = {}


@runtime_checkable
class Policy(Protocol):
    """What every policy provides: a plan for a scenario."""

    def plan(self, scenario) -> Any: ...


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name or any(c.isspace() for c in name) or ":" in name:
        raise PolicyError(f"policy name must be a non-empty string without spaces or ':', got {name!r}")
    return name


def register_policy(name: str, *, replace: bool = False):
    """Class decorator: register a policy class (or factory) under ``name``.

    Registering a different object under a taken name raises :class:`PolicyError` unless ``replace=True``.
    The class gets a ``policy_name`` attribute if it has none.
    """
    _check_name(name)

    def decorate(obj):
        if not callable(obj):
            raise PolicyError(f"register_policy({name!r}): expected a class or factory, got {obj!r}")
        if inspect.isclass(obj) and not callable(getattr(obj, "plan", None)):
            raise PolicyError(f"register_policy({name!r}): {obj.__qualname__} has no plan(scenario) method")
        old = _REGISTRY.get(name)
        if old is not None and old is not obj and not replace and _qualname(old) != _qualname(obj):
            raise PolicyError(f"policy {name!r} is already registered ({_qualname(old)}); pass replace=True")
        _REGISTRY[name] = obj
        if inspect.isclass(obj) and "policy_name" not in obj.__dict__:
            obj.policy_name = name
        return obj

    return decorate


def _qualname(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    try:
        return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    except Exception:  # pragma: no cover - broken metadata of some other distribution
        return {}


def available_policies() -> list[str]:
    """Every policy name that :func:`get_policy` resolves without a path: registered, built-in, entry points."""
    return sorted(set(_REGISTRY) | set(BUILTINS) | set(_entry_points()))


def _import_target(target: str, what: str):
    module, _, attr = target.partition(":")
    try:
        obj = importlib.import_module(module)
    except ImportError as exc:
        raise PolicyError(f"{what}: cannot import {module!r} ({exc})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise PolicyError(f"{what}: {module!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def load_file_policy(spec: str, *, base_dir: str | Path | None = None):
    """The class named by ``path/to/file.py:ClassName`` (a relative path is taken from ``base_dir`` or the cwd)."""
    path_s, sep, attr = str(spec).rpartition(":")
    if not sep or not path_s.endswith(".py") or not attr:
        raise PolicyError(f"policy {spec!r}: a file policy is written 'path/to/file.py:ClassName'")
    path = Path(path_s).expanduser()
    if not path.is_absolute():
        path = Path(base_dir or Path.cwd()) / path
    if not path.is_file():
        raise PolicyError(f"policy {spec!r}: no such file {path}")
    mod_name = f"specedge_user_policy_{abs(hash(str(path.resolve()))):x}"
    module = sys.modules.get(mod_name)
    if module is None or getattr(module, "__file__", None) != str(path):
        loader_spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[mod_name]
            raise PolicyError(f"policy {spec!r}: {path} failed to import: {type(exc).__name__}: {exc}") from None
    if not hasattr(module, attr):
        raise PolicyError(f"policy {spec!r}: {path.name} defines no {attr!r}")
    return getattr(module, attr)


def policy_class(name: str):
    """The class (or factory) behind a policy name, a ``file.py:Class`` spec or an entry point."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in BUILTINS:
        obj = _import_target(BUILTINS[name], f"built-in policy {name!r}")
        _REGISTRY.setdefault(name, obj)
        return _REGISTRY[name]
    if ".py:" in name:
        return load_file_policy(name)
    eps = _entry_points()
    if name in eps:
        try:
            obj = eps[name].load()
        except Exception as exc:
            raise PolicyError(f"policy {name!r}: entry point {eps[name].value!r} failed to load: {exc}") from None
        _REGISTRY.setdefault(name, obj)
        return obj
    raise PolicyError(f"unknown policy {name!r}; available policies: {', '.join(available_policies())}"
                      + (f"; presets: {', '.join(available_presets())}" if available_presets() else ""))


def instantiate(obj, params: Mapping[str, Any], what: str):
    """``obj(**params)`` with a clear PolicyError for parameters the policy does not take."""
    if not inspect.isclass(obj) and not callable(obj):
        raise PolicyError(f"{what}: not a class or factory: {obj!r}")
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        sig = None
    if sig is not None and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        known = [n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise PolicyError(f"{what} does not take parameter(s) {', '.join(unknown)}; it takes: "
                              f"{', '.join(known) or 'none'}")
    try:
        inst = obj(**params)
    except PolicyError:
        raise
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{what}: bad parameters {dict(params)}: {exc}") from None
    if not callable(getattr(inst, "plan", None)):
        raise PolicyError(f"{what}: {type(inst).__name__} has no plan(scenario) method")
    return inst


def get_policy(spec: Any = None, **params):
    """A policy instance from a name, ``file.py:Class``, a preset (name or .toml path), a class or an instance.

    ``None`` gives the default (best) policy. Keyword arguments are the policy's parameters (for a preset they
    override the preset's).
    """
    if spec is None:
        spec = DEFAULT_POLICY
    if isinstance(spec, PolicyPreset):
        return spec.make(**params)
    if not isinstance(spec, (str, Path)):
        if inspect.isclass(spec):
            return instantiate(spec, params, f"policy {spec.__name__}")
        if callable(getattr(spec, "plan", None)):
            if params:
                raise PolicyError(f"policy {type(spec).__name__}: parameters given for an existing instance")
            return spec
        raise PolicyError(f"not a policy: {spec!r} (no plan(scenario) method)")
    name = str(spec)
    if name.endswith(".toml") or (name not in available_policies() and name in available_presets()):
        return load_preset(name).make(**params)
    return instantiate(policy_class(name), params, f"policy {name!r}")


def policy_name(policy) -> str:
    """The name a policy is reported under."""
    return str(getattr(policy, "display_name", None) or getattr(policy, "policy_name", None)
               or type(policy).__name__)


# ------------------------------------------------------------------------------------------------ presets
def presets_dirs() -> list[Path]:
    """Where preset names are looked up: $SPECEDGE_POLICIES_DIR, ./policies, the source tree's policies/."""
    dirs = []
    if os.environ.get("SPECEDGE_POLICIES_DIR"):
        dirs.append(Path(os.environ["SPECEDGE_POLICIES_DIR"]))
    dirs.append(Path.cwd() / "policies")
    repo = Path(__file__).resolve().parents[3] / "policies"
    if repo.is_dir():
        dirs.append(repo)
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def available_presets() -> list[str]:
    return sorted({p.stem for d in presets_dirs() for p in d.glob("*.toml")})


@dataclass(frozen=True)
class PolicyPreset:
    """A named policy configuration from a TOML file in ``policies/``.

    File keys: ``policy`` (a registered name, ``file.py:Class`` relative to the preset's folder, or an entry
    point), optional ``name`` (shown in reports; default the file stem), ``description``, and a ``[params]``
    table passed to the policy's constructor.
    """

    name: str
    policy: str
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    path: Path | None = None

    def make(self, **overrides):
        spec = self.policy
        if ".py:" in spec:
            cls = load_file_policy(spec, base_dir=self.path.parent if self.path else None)
        else:
            cls = policy_class(spec)
        inst = instantiate(cls, {**self.params, **overrides}, f"preset {self.name!r} (policy {spec!r})")
        try:
            object.__setattr__(inst, "display_name", self.name)
        except (AttributeError, TypeError):  # pragma: no cover - objects with __slots__
            pass
        return inst


def load_preset(name: str | Path) -> PolicyPreset:
    """Read a policy preset: a path to a ``.toml`` file, or the stem of one in :func:`presets_dirs`."""
    path = Path(name)
    if not str(name).endswith(".toml"):
        for d in presets_dirs():
            if (d / f"{name}.toml").is_file():
                path = d / f"{name}.toml"
                break
        else:
            raise PolicyError(f"unknown policy preset {str(name)!r}; presets: {', '.join(available_presets()) or 'none'}"
                              f" (looked in {', '.join(str(d) for d in presets_dirs()) or 'no policies/ folder'})")
    if not path.is_file():
        raise PolicyError(f"{path}: no such policy preset file")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"name", "policy", "description", "params"})
    if unknown:
        raise PolicyError(f"{path}: unknown key(s) {', '.join(unknown)}; expected name, policy, description, params")
    if not isinstance(data.get("policy"), str) or not data["policy"]:
        raise PolicyError(f"{path}: missing 'policy' (a policy name or 'file.py:Class')")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise PolicyError(f"{path}: 'params' must be a table")
    return PolicyPreset(name=str(data.get("name", path.stem)), policy=data["policy"], params=params,
                        description=str(data.get("description", "")), path=path)


# ------------------------------------------------------------------------------------------------ running
def replay(scenario, policy=None, plan=None, *, replications: int = 1, seed: int = 0, **params):
    """Plan with ``policy`` (unless ``plan`` is given) and replay it, through the policy's controller if it has
    one. Returns :class:`specedge.replay.ReplayResult`."""
    from specedge.replay import evaluate

    pol = get_policy(policy, **params)
    if plan is None:
        plan = pol.plan(scenario)
    make_controller = getattr(pol, "controller", None)
    controller = make_controller(scenario, plan) if callable(make_controller) else None
    if controller is None:
        return evaluate(scenario, plan, replications=replications, seed=seed)
    return evaluate(scenario, plan, replications=replications, seed=seed, controller=controller,
                    max_speculation_length=getattr(pol, "l_max", None))
