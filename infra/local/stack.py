#!/usr/bin/env python3
"""Start, stop and inspect Lifeboat's local AWS stack.

The stack is two detached processes:

* ``moto``: ``launcher.py``, moto in server mode plus the Lambda Invoke bridge,
  on 127.0.0.1:$LIFEBOAT_MOTO_PORT (default 5077). This is the stack's single
  AWS endpoint (``AWS_ENDPOINT_URL``).
* ``cargo-lambda``: ``cargo lambda watch``, which builds and runs the workspace's
  function binaries behind the Lambda Invoke API on
  127.0.0.1:$LIFEBOAT_LAMBDA_PORT (default 9077). The functions get the "local
  deployment" environment from ``infra/local/functions.env``.

Once both answer, ``up`` deploys template.yaml's resources to moto (``provision.py``; what
is created and under which names: ``local_stack.py``), or says they are already there,
and prints them.

Usage (normally through ``make up | down | status``; run with the project venv's
python so that the launcher finds moto and cargo finds ``cargo-lambda``)::

    .venv/bin/python infra/local/stack.py up       # start, or reuse a healthy stack
    .venv/bin/python infra/local/stack.py status   # exit 0 if healthy, 3 if not
    .venv/bin/python infra/local/stack.py down     # stop what `up` started

Environment: ``LIFEBOAT_MOTO_PORT`` (5077), ``LIFEBOAT_LAMBDA_PORT`` (9077),
``LIFEBOAT_LAMBDA_CONCURRENCY`` (instances per function, 2), ``CARGO_TARGET_DIR``
(``~/.cache/lifeboat/target``), ``LIFEBOAT_STATE_DIR`` (``<repo>/.local/stack``).

The state dir holds pid files, logs and the rendered function environment.
``down`` only signals processes whose pid it recorded *and* whose command line
is still ours. Functions are built on their first invocation and not rebuilt on
edits: ``make down up`` picks up new code.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
LAUNCHER = HERE / "launcher.py"
FUNCTIONS_ENV_TEMPLATE = HERE / "functions.env"

HOST = "127.0.0.1"
DEFAULT_MOTO_PORT = 5077
DEFAULT_LAMBDA_PORT = 9077
# Function instances cargo-lambda may run at once per function (its default is 1).
DEFAULT_LAMBDA_CONCURRENCY = 2
START_TIMEOUT_S = 60.0
# How long a running process of ours may take to answer before `up` gives up on it.
REUSE_PATIENCE_S = 30.0
STOP_GRACE_S = 5.0
POLL_INTERVAL_S = 0.1
# Must match launcher.HEALTH_PATH / its "service" field.
HEALTH_PATH = "/_lifeboat/health"
HEALTH_SERVICE = "lifeboat-local-aws"
LOG_TAIL_LINES = 25

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_NOT_RUNNING = 3  # LSB "program is not running"


class StackError(Exception):
    """A failure worth one clear message to the user (no traceback)."""


# --- configuration -------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Everything the stack depends on, read once from the environment."""

    state_dir: Path
    moto_port: int
    lambda_port: int
    lambda_concurrency: int
    cargo_target_dir: Path
    python: Path  # the venv interpreter that runs the launcher
    venv_bin: Path  # holds `cargo-lambda`, put first on the children's PATH

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Settings:
        python = Path(sys.executable)
        return cls(
            state_dir=Path(env.get("LIFEBOAT_STATE_DIR") or REPO / ".local" / "stack").resolve(),
            moto_port=env_int(env, "LIFEBOAT_MOTO_PORT", DEFAULT_MOTO_PORT),
            lambda_port=env_int(env, "LIFEBOAT_LAMBDA_PORT", DEFAULT_LAMBDA_PORT),
            lambda_concurrency=env_int(
                env, "LIFEBOAT_LAMBDA_CONCURRENCY", DEFAULT_LAMBDA_CONCURRENCY, high=64
            ),
            cargo_target_dir=Path(
                env.get("CARGO_TARGET_DIR") or Path.home() / ".cache" / "lifeboat" / "target"
            ),
            python=python,
            venv_bin=python.parent,
        )

    @property
    def functions_env(self) -> Path:
        """The function environment, rendered for this stack's ports."""
        return self.state_dir / "functions.env"

    @property
    def ports_file(self) -> Path:
        return self.state_dir / "ports.json"


def env_int(
    env: dict[str, str], name: str, default: int, *, low: int = 1, high: int = 65535
) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise StackError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise StackError(f"{name}={value} is outside {low}..{high}")
    return value


# --- components ----------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    """One long-running process of the stack."""

    name: str
    port: int
    argv: list[str]
    # Tokens that must all appear in /proc/<pid>/cmdline for a pid to count as
    # ours (guards against pid reuse after a crash or reboot).
    markers: tuple[str, ...]
    health: Callable[[], bool]
    state_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"{self.name}.log"

    def recorded_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def is_up(self, patience_s: float = 0.0) -> bool:
        """True if the recorded process is ours and answers its health check.

        A process that is ours and alive gets `patience_s` to answer: on a loaded
        machine (a test run using every core) a health probe can time out although
        the process is fine, and restarting it would only collide on its own port.
        """
        pid = self.recorded_pid()
        if pid is None or not self.owns(pid):
            return False
        deadline = time.monotonic() + patience_s
        while True:
            if self.health():
                return True
            if time.monotonic() >= deadline or not self.owns(pid):
                return False
            time.sleep(0.5)

    def owns(self, pid: int) -> bool:
        """True if `pid` is alive and still runs this component's command."""
        args = cmdline(pid)
        return args is not None and is_alive(pid) and all(m in args for m in self.markers)


def components(settings: Settings, ports: tuple[int, int]) -> list[Component]:
    """The stack's processes, for the given (moto, lambda) ports."""
    moto_port, lambda_port = ports
    launcher_argv = [
        str(settings.python),
        str(LAUNCHER),
        "--host",
        HOST,
        "--port",
        str(moto_port),
        "--lambda-host",
        HOST,
        "--lambda-port",
        str(lambda_port),
        "--api-port",
        str(moto_port + 1),
    ]
    watch_argv = [
        "cargo",
        "lambda",
        "watch",
        # Build each function once, on its first invocation, and never rebuild on
        # file changes: edits would otherwise restart builds that compete with
        # `cargo build`/`cargo test` for the 2 cores and the shared target dir.
        # Restart the stack (make down up) to pick up new code.
        "--ignore-changes",
        "--invoke-address",
        HOST,
        "--invoke-port",
        str(lambda_port),
        "--concurrency",
        str(settings.lambda_concurrency),
        "--env-file",
        str(settings.functions_env),
        "--color",
        "never",
    ]
    return [
        Component(
            name="moto",
            port=moto_port,
            argv=launcher_argv,
            markers=(str(LAUNCHER), "--port", str(moto_port)),
            health=lambda: launcher_healthy(moto_port, lambda_port),
            state_dir=settings.state_dir,
        ),
        Component(
            name="cargo-lambda",
            port=lambda_port,
            argv=watch_argv,
            # `cargo lambda` execs `cargo-lambda lambda watch ...`; the env file
            # path is unique to this state dir.
            markers=("lambda", "watch", str(settings.functions_env)),
            health=lambda: port_open(lambda_port),
            state_dir=settings.state_dir,
        ),
    ]


def launcher_healthy(moto_port: int, lambda_port: int) -> bool:
    """True if our launcher answers on `moto_port`, bridging to `lambda_port`."""
    url = f"http://{HOST}:{moto_port}{HEALTH_PATH}"
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            body = json.load(reply)
    except (OSError, ValueError):
        return False
    return (
        body.get("service") == HEALTH_SERVICE
        and body.get("execute_state_machine") is True
        and body.get("lambda_endpoint") == f"http://{HOST}:{lambda_port}"
    )


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
        return True
    return False


# --- processes -------------------------------------------------------------------


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], ppid [1])."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces/parens.
    return raw[raw.rindex(")") + 2 :].split()


def is_alive(pid: int) -> bool:
    """True for a running process; zombies (exited, not yet reaped) count as dead."""
    fields = proc_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def descendants(root: int) -> list[int]:
    """All live descendants of `root` (cargo-lambda's builds and function instances
    may run in process groups of their own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := proc_stat(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def signal_tree(leader: int, pids: list[int], sig: signal.Signals) -> None:
    """Send `sig` to `leader`'s process group (it leads its own session) and to `pids`."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(leader) == leader:
            os.killpg(leader, sig)
        else:
            os.kill(leader, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL_S)


def stop(component: Component) -> str:
    """Stop the component's recorded process (if it is still ours); say what happened."""
    pid = component.recorded_pid()
    if pid is None:
        component.pid_file.unlink(missing_ok=True)
        return "not running"
    if not is_alive(pid):
        component.pid_file.unlink(missing_ok=True)
        return f"not running (stale pid {pid})"
    if not component.owns(pid):
        component.pid_file.unlink(missing_ok=True)
        return f"pid {pid} now belongs to another command; left alone"

    tree = descendants(pid)
    signal_tree(pid, tree, signal.SIGTERM)
    everyone = [pid, *tree]
    graceful = wait_until(lambda: not any(map(is_alive, everyone)), STOP_GRACE_S)
    if not graceful:
        # Only pids we saw as descendants of our process a moment ago.
        signal_tree(pid, [p for p in tree if is_alive(p)], signal.SIGKILL)
        wait_until(lambda: not any(map(is_alive, everyone)), STOP_GRACE_S)
    component.pid_file.unlink(missing_ok=True)
    return f"stopped pid {pid}" + ("" if graceful else " (SIGKILL after grace period)")


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


# --- state ----------------------------------------------------------------------


@contextlib.contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """Serialise up/down: parallel test runs may all call `up` at once."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def recorded_ports(settings: Settings) -> tuple[int, int]:
    """The ports the running (or last) stack was started with; else the configured ones."""
    try:
        ports = json.loads(settings.ports_file.read_text())
        return int(ports["moto"]), int(ports["lambda"])
    except (OSError, ValueError, KeyError, TypeError):
        return settings.moto_port, settings.lambda_port


def render_functions_env(settings: Settings) -> str:
    """The function environment with this stack's ports substituted."""
    template = string.Template(FUNCTIONS_ENV_TEMPLATE.read_text())
    try:
        text = template.substitute(
            LIFEBOAT_MOTO_PORT=settings.moto_port,
            LIFEBOAT_LAMBDA_PORT=settings.lambda_port,
        )
    except (KeyError, ValueError) as err:
        raise StackError(f"{FUNCTIONS_ENV_TEMPLATE}: unknown placeholder {err}") from None
    # Only KEY=VALUE lines: keep the env-file reader's job trivial.
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return "\n".join(lines) + "\n"


def functions_env_changed(settings: Settings) -> bool:
    """True if infra/local/functions.env no longer matches what cargo-lambda was given."""
    try:
        return settings.functions_env.read_text() != render_functions_env(settings)
    except OSError:
        return True


def child_env(settings: Settings) -> dict[str, str]:
    """The environment of the stack's processes.

    Drops every AWS_* variable of the caller's shell (profiles, real credentials,
    endpoint overrides): the local deployment gets exactly functions.env.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = f"{settings.venv_bin}{os.pathsep}{env.get('PATH', '')}"
    env["CARGO_TARGET_DIR"] = str(settings.cargo_target_dir)
    env["PYTHONUNBUFFERED"] = "1"
    env["LIFEBOAT_MOTO_PORT"] = str(settings.moto_port)
    env["LIFEBOAT_LAMBDA_PORT"] = str(settings.lambda_port)
    return env


# --- commands -----------------------------------------------------------------------


def check_prerequisites(settings: Settings, env: dict[str, str]) -> None:
    if sys.prefix == sys.base_prefix:
        raise StackError(
            f"run stack.py with the project venv's python (make up), not {sys.executable}"
        )
    if not (settings.venv_bin / "cargo-lambda").exists():
        raise StackError(f"cargo-lambda is missing from {settings.venv_bin}; run `make venv`")
    if shutil.which("cargo", path=env["PATH"]) is None:
        raise StackError("cargo is not on PATH (install Rust with rustup)")


def up(settings: Settings) -> int:
    with locked(settings.state_dir):
        wanted = (settings.moto_port, settings.lambda_port)
        running = recorded_ports(settings)
        current = components(settings, running)
        # Keep what is healthy (moto's state survives a crashed cargo-lambda);
        # on a port change nothing is kept.
        keep = {c.name for c in current if c.is_up(REUSE_PATIENCE_S)} if running == wanted else set()
        if "cargo-lambda" in keep and functions_env_changed(settings):
            print("cargo-lambda: functions.env changed, restarting it")
            keep.discard("cargo-lambda")
        if len(keep) == len(current):
            print(f"reusing local AWS stack in {settings.state_dir}")
            deploy(settings)
            print_endpoints(settings)
            return EXIT_OK

        env = child_env(settings)
        check_prerequisites(settings, env)

        # Whatever is left of an earlier stack (crashed, hung, other ports) goes first.
        for component in current:
            if component.name not in keep and component.recorded_pid() is not None:
                print(f"{component.name}: {stop(component)}")

        to_start = [c for c in components(settings, wanted) if c.name not in keep]
        for component in to_start:
            if port_open(component.port):
                raise StackError(
                    f"{component.name}: port {HOST}:{component.port} is already in use by a "
                    "process this stack did not start; stop it or choose another port "
                    "(LIFEBOAT_MOTO_PORT / LIFEBOAT_LAMBDA_PORT)"
                )

        settings.functions_env.write_text(render_functions_env(settings))
        settings.ports_file.write_text(
            json.dumps({"moto": settings.moto_port, "lambda": settings.lambda_port}) + "\n"
        )
        started = time.monotonic()
        processes = {c.name: spawn(c, env) for c in to_start}
        try:
            wait_healthy(to_start, processes, started)
        except StackError:
            for component in to_start:
                stop(component)
            if not keep:
                settings.ports_file.unlink(missing_ok=True)
            raise

        elapsed = time.monotonic() - started
        for component in current:
            if component.name in keep:
                pid = component.recorded_pid()
                print(f"{component.name}: reusing pid {pid}, port {component.port}")
        for component in to_start:
            print(
                f"{component.name}: pid {processes[component.name].pid}, "
                f"port {component.port}, log {component.log_file}"
            )
        print(f"local AWS stack up in {elapsed:.1f}s")
        deploy(settings)
        print_endpoints(settings)
        return EXIT_OK


def deploy(settings: Settings) -> None:
    """Deploys template.yaml to the stack's moto unless it is there, and prints its
    resources (provision.py; boto3 is loaded only here)."""
    import provision

    endpoint = f"http://{HOST}:{settings.moto_port}"
    env_text = render_functions_env(settings)
    try:
        lines = provision.run(endpoint, env_text, settings.moto_port, settings.moto_port + 1)
    except provision.ProvisionError as err:
        raise StackError(f"local deployment: {err}") from None
    print("\n".join(lines))


def spawn(component: Component, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start `component` detached (own session), logging to its log file."""
    with open(component.log_file, "wb") as log:
        process = subprocess.Popen(
            component.argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    component.pid_file.write_text(f"{process.pid}\n")
    return process


def wait_healthy(
    wanted: list[Component],
    processes: dict[str, subprocess.Popen[bytes]],
    started: float,
) -> None:
    """Block until every component is healthy; fail fast if one exits."""
    pending = list(wanted)
    while pending:
        for component in list(pending):
            code = processes[component.name].poll()
            if code is not None:
                raise StackError(
                    f"{component.name} exited with status {code} during start-up; "
                    f"see {component.log_file}:\n{tail(component.log_file)}"
                )
            if component.health():
                pending.remove(component)
        if not pending:
            return
        if time.monotonic() - started > START_TIMEOUT_S:
            names = ", ".join(f"{c.name} (log: {c.log_file})" for c in pending)
            details = "\n".join(f"  {c.log_file}:\n{tail(c.log_file)}" for c in pending)
            raise StackError(f"not healthy after {START_TIMEOUT_S:.0f}s: {names}\n{details}")
        time.sleep(POLL_INTERVAL_S)


def down(settings: Settings) -> int:
    with locked(settings.state_dir):
        started = time.monotonic()
        for component in components(settings, recorded_ports(settings)):
            print(f"{component.name}: {stop(component)}")
        settings.ports_file.unlink(missing_ok=True)
        print(f"local AWS stack down in {time.monotonic() - started:.1f}s")
    return EXIT_OK


def status(settings: Settings) -> int:
    all_healthy = True
    for component in components(settings, recorded_ports(settings)):
        pid = component.recorded_pid()
        if pid is None:
            state = "stopped"
        elif not is_alive(pid):
            state = "dead (stale pid file)"
        elif not component.owns(pid):
            state = "stale pid file (pid now runs another command)"
        elif component.health():
            state = "alive, healthy"
        else:
            state = "alive, NOT healthy"
        all_healthy &= state == "alive, healthy"
        shown_pid = "-" if pid is None else str(pid)
        print(
            f"{component.name:<13} pid {shown_pid:<8} port {component.port:<6} {state:<20} "
            f"log {component.log_file}"
        )
    return EXIT_OK if all_healthy else EXIT_NOT_RUNNING


def print_endpoints(settings: Settings) -> None:
    print(f"  AWS endpoint:    AWS_ENDPOINT_URL=http://{HOST}:{settings.moto_port}")
    print(f"  Lambda runtimes: http://{HOST}:{settings.lambda_port} (cargo lambda watch)")
    print(
        f"  admin API:       LIFEBOAT_API_URL=http://{HOST}:{settings.moto_port + 1}/v1"
        " (SigV4; local principals in infra/local/api_gateway.py)"
    )
    print(f"  function env:    {settings.functions_env}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the stack, or reuse a healthy one")
    commands.add_parser("down", help="stop the processes `up` started")
    commands.add_parser("status", help="show each process; exit 0 if all healthy, 3 if not")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env(dict(os.environ))
        command = {"up": up, "down": down, "status": status}[args.command]
        return command(settings)
    except StackError as err:
        print(f"stack.py {args.command}: {err}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
