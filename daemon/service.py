"""heald, the daemon: opens the knowledge store, then ticks until told to stop.

Each tick renews the actor lease and a renewal thread renews it between ticks; the daemon that holds it
settles what earlier holders left unfinished (the journal's reconcile) and acts, the others only monitor.

Signals: SIGHUP reloads the config (a bad new config is logged and the old one kept); SIGTERM and SIGINT
stop new actions, let the tick in progress finish, wait for running actions, and exit 0. Under systemd
(Type=notify) it reports READY=1 after the store is open and migrated, WATCHDOG=1 while the loop makes
progress (after each tick, and between ticks unless one hangs: ``daemon.heartbeat``), and a one-line STATUS
that also says when intake is paused by a full disk. Every start-up failure (a bad config, a store that cannot
be opened or is not heald's, a state folder that cannot be created, a port taken) is one line on stderr and
exit status 2, which systemd should not restart on; a traceback is a bug.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from importlib.metadata import version
from pathlib import Path
from types import FrameType

from daemon import config as configuration
from daemon import logs
from daemon.api import ApiServer, create_app
from daemon.capture import Capture
from daemon.compose import Heald, build
from daemon.heartbeat import Heartbeat
from daemon.leader import LeaseRenewer, renewal_seconds
from daemon.metrics import Metrics
from daemon.scheduler import TickScheduler
from daemon.systemd import notify, watchdog_seconds
from knowledge.errors import ConfigError, HealdError

log = logs.get("heald.service")


class Service:
    """The long-running daemon around one wired heald."""

    def __init__(self, heald: Heald, config_path: Path | None) -> None:
        self.heald = heald
        self.capture = Capture(heald.settings.landing, lambda: self.heald.store)
        self.metrics = Metrics(heald.store, lambda: self.heald.registry, lambda: self.heald.loop.p.intake.health)
        self.metrics.tick_interval.set(heald.settings.tick_seconds)
        self.config_path = config_path
        self.ticks = 0
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._stop_signal = "none"  # the signal that asked to stop, logged once the main loop sees it
        self._lock = threading.Lock()
        watchdog = watchdog_seconds()
        # Without a watchdog nobody listens; with one, a hung tick stops the pings after one watchdog period.
        self.heartbeat = Heartbeat(heald.settings.tick_seconds, stall_after=watchdog or 300.0)
        self._ping_every = watchdog / 3 if watchdog else 1.0
        self._pinged = 0.0

    def tick(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            self.heartbeat.tick_started()
            started = time.perf_counter()
            try:
                self.landing_folders()
                self._flush_capture()
                report = self.heald.loop.tick()
            except Exception as exc:  # a failed tick is logged and retried next interval; the daemon stays up
                log.exception("tick_failed", error=f"{type(exc).__name__}: {exc}")
                self.metrics.ticks_skipped.labels("failed").inc()
                self._ping(STATUS=f"last tick failed: {type(exc).__name__}: {exc}"[:240])
                return
            finally:
                self.heartbeat.tick_ended()
            self.metrics.tick_completed(time.perf_counter() - started)
            self.ticks += 1
            self._ping(STATUS=self._status(report.failed))
            log.info(
                "tick_completed",
                tick=self.ticks,
                observations=report.observations,
                opened=report.opened,
                resolved=report.resolved,
                started=report.started,
                failed=report.failed,
            )

    def landing_folders(self) -> None:
        """Create ``<data_path>/<model>/`` for every model, so producers have a folder to write to."""
        for model in self.heald.store.list_models():
            folder = self.heald.settings.landing / model.name
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # one model's folder must not stop the tick for the others
                log.warning("landing_folder_failed", model=model.name, folder=str(folder), error=str(exc))

    def renew_lease(self) -> None:
        """Renew the lease between ticks (the renewal thread), so a long tick does not hand it to a follower."""
        lease = self.heald.loop.p.lease
        if lease is not None and not self._stop.is_set():
            lease()

    def _flush_capture(self) -> None:
        try:
            self.capture.flush(self.heald.clock.now())
        except Exception:  # e.g. a full disk: the loop still ticks (and intake says why it is paused)
            log.exception("capture_flush_failed")

    def _status(self, failed: list[str]) -> str:
        open_incidents = len(self.heald.store.active_incidents())
        models = len(self.heald.store.list_models())
        line = f"tick {self.ticks}: {models} model(s), {open_incidents} open incident(s)"
        if failed:
            line += f"; tick failed for {', '.join(failed)}"
        paused = self.heald.loop.p.intake.health.summary()
        return f"{line}; {paused}" if paused else line

    def _ping(self, **fields: str) -> None:
        self._pinged = time.monotonic()
        notify(WATCHDOG=1, **fields)

    def keep_alive(self) -> None:
        """Ping the watchdog between ticks (and during a long one) while the loop makes progress."""
        if time.monotonic() - self._pinged >= self._ping_every and self.heartbeat.progressing():
            self._ping()

    def reload(self) -> None:
        """Re-read the config; keep running on the old one if the new one is invalid."""
        try:
            settings = configuration.load(self.config_path)
        except ConfigError as exc:
            log.error("config_reload_failed", error=str(exc))
            return
        with self._lock:
            pool = self.heald.loop.p.pool
            old_sources = self.heald.loop.p.sources
            old_sensing = self.heald.loop.p.sensing
            self.heald = build(settings, store=self.heald.store, pool_instance=pool)
            if old_sources is not None:
                old_sources.close()  # the new config's sources replace them: their database connections go
            if old_sensing is not None:
                old_sensing.close()  # sensing processes compose from the old settings: the new ones start anew
            logs.configure(settings.log_level)
        log.info("config_reloaded", source=settings.source)

    def serve_api(self) -> ApiServer | None:
        """Bind the HTTP API (before READY, so a ready heald answers); None when disabled."""
        settings = self.heald.settings
        if not settings.api_enabled:
            return None
        app = create_app(lambda: self.heald, self.capture, self.metrics)
        server = ApiServer(app, settings.api_host, settings.api_port)
        server.start()
        return server

    def run(self) -> int:
        try:
            api = self.serve_api()
        except OSError as exc:
            log.error("service_failed", error=str(exc))
            sys.stderr.write(f"heald: {_one_line(exc)}\n")
            return 2
        scheduler = TickScheduler(self.tick, self.heald.settings.tick_seconds, on_overlap=self._on_overlap)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        renewer = LeaseRenewer(self.renew_lease, lambda: renewal_seconds(self.heald.settings.tick_seconds))
        renewer.start()
        scheduler.start()
        notify(READY=1, STATUS="started; first tick running")
        log.info("service_started", database=self.heald.store.url, tick_seconds=self.heald.settings.tick_seconds)
        while not self._stop.is_set():
            if self._reload.wait(timeout=0.5):
                self._reload.clear()
                notify(RELOADING=1)
                self.reload()
                scheduler.reschedule(self.heald.settings.tick_seconds)
                self.metrics.tick_interval.set(self.heald.settings.tick_seconds)
                self.heartbeat.interval = self.heald.settings.tick_seconds
                notify(READY=1)
            self.keep_alive()
        log.info("stop_requested", signal=self._stop_signal)
        notify(STOPPING=1, STATUS="stopping: waiting for running actions")
        self.heald.loop.stopping = True
        if api is not None:
            api.stop()
        scheduler.stop()
        renewer.stop()
        self.capture.flush(self.heald.clock.now())  # served rows are data: never dropped on the way out
        self.heald.close()
        log.info("service_stopped", ticks=self.ticks)
        return 0

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        # No logging here: the handler runs on the main thread between any two bytecodes, possibly inside the
        # logger's own write, whose lock is not reentrant: a log call here can deadlock the whole daemon.
        self._stop_signal = signal.Signals(signum).name
        self._stop.set()

    def _on_overlap(self) -> None:
        self.metrics.ticks_skipped.labels("overlap").inc()
        log.warning("tick_skipped", reason="the previous tick is still running")

    def _on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload.set()


def _one_line(exc: Exception) -> str:
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    where = f" {exc.filename}" if isinstance(exc, OSError) and exc.filename else ""
    return "; ".join(" ".join(line.split()) for line in f"{text}{where}".splitlines() if line.strip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="heald", description="The self-healing MLOps daemon.")
    parser.add_argument(
        "--config", "-c", type=Path, help="config file (default: $HEALD_CONFIG or /etc/heald/heald.toml)"
    )
    parser.add_argument("--once", action="store_true", help="run one tick and exit (for cron or a smoke test)")
    parser.add_argument("--version", action="version", version=f"heald {version('heald')}")
    args = parser.parse_args(argv)
    try:
        settings = configuration.load(args.config)
    except ConfigError as exc:
        # One JSON line on stderr, like every other line (log-based alerting sees it), and exit status 2.
        logs.configure("info", stream=sys.stderr)
        log.error("config_invalid", error=_one_line(exc))
        raise SystemExit(2) from None
    logs.configure(settings.log_level)
    configuration.warn_ignored(settings, log)
    try:
        heald = build(settings)
        service = Service(heald, args.config)
    except (HealdError, OSError) as exc:
        log.error("service_failed", error=str(exc))
        sys.stderr.write(f"heald: {_one_line(exc)}\n")
        raise SystemExit(2) from None
    if args.once:
        service.tick()  # the tick settles what an earlier holder left unfinished once it holds the lease
        heald.close()
        return
    raise SystemExit(service.run())
