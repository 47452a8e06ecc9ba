"""Choosing and configuring the Beam runner.

Beam 2.77's ``DirectRunner`` first tries the Prism runner, which downloads a Go binary; offline
it logs a failure and falls back to a bundle-based runner that uses one core.  We therefore
build the portable ``FnApiRunner`` ourselves in multi-process mode with one SDK worker per core
(in this process when there is only one worker) unless the user names a runner (``--runner
DataflowRunner``, ``FlinkRunner``, ...), in which case every Beam option passes through untouched.
"""
from __future__ import annotations

import os
from typing import Sequence

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

LOCAL_RUNNER = "local"


def has_flag(args: Sequence[str], name: str) -> bool:
    return any(a == name or a.startswith(name + "=") for a in args)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _flag_value(args: Sequence[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
        if arg == name and i + 1 < len(args):
            return args[i + 1]
    return None


# SDK worker processes log every gRPC channel at INFO; keep warnings and our own lines.
WORKER_LOG_LEVELS = ('{"pipelines": "INFO", "warcio": "ERROR", "__main__": "ERROR", '
                     '"apache_beam.options.pipeline_options": "ERROR"}')


def make_options(beam_args: Sequence[str], *, workers: int | None = None) -> PipelineOptions:
    """PipelineOptions for ``beam_args``; the local default runner when none is named."""
    args = list(beam_args)
    runner = _flag_value(args, "--runner")
    if runner is None:
        runner = LOCAL_RUNNER
        args.append(f"--runner={LOCAL_RUNNER}")
    if runner.lower() == LOCAL_RUNNER:
        named = _flag_value(args, "--direct_num_workers")
        count = workers or (int(named) if named and named.isdigit() else default_workers())
        # One worker: run the bundles in this process.  A separate SDK worker process would only
        # add its start-up (a second Beam import, ~2 CPU-s per run; BENCHMARKS.md "Cost per page").
        defaults = {"--direct_running_mode": "in_memory" if count == 1 else "multi_processing",
                    "--direct_num_workers": str(workers or default_workers()),
                    "--default_sdk_harness_log_level": "WARNING",
                    "--sdk_harness_log_level_overrides": WORKER_LOG_LEVELS}
        args += [f"{flag}={value}" for flag, value in defaults.items() if not has_flag(args, flag)]
    options = PipelineOptions(args)
    if runner.lower() == LOCAL_RUNNER and workers is not None:
        options.view_as(DirectOptions).direct_num_workers = workers
    return options


def make_runner(options: PipelineOptions):
    """The runner object for ``options`` (None lets Beam build the one named in the options)."""
    std = options.view_as(StandardOptions)
    if (std.runner or "").lower() == LOCAL_RUNNER:
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import fn_runner
        from apache_beam.runners.portability.portable_runner import JobServiceHandle

        std.runner = None
        if options.view_as(DirectOptions).direct_running_mode == "multi_processing":
            # The SDK worker processes started from here inherit the environment: with glibc's
            # default of 8 malloc arenas per core their peak RSS stays ~15% higher (dedup at 10k
            # documents: 596 -> 507 MB per worker with 2 arenas, BENCHMARKS.md).  A value the
            # user set is kept.
            os.environ.setdefault("MALLOC_ARENA_MAX", "2")
        # Like DirectRunner, hand the options to the SDK workers (they read their log levels
        # from them); without this the workers log every gRPC channel at INFO.
        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        info = fn_runner.ExtendedProvisionInfo(
            beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
        return fn_runner.FnApiRunner(provision_info=info)
    return None


def is_local(options: PipelineOptions) -> bool:
    runner = options.view_as(StandardOptions).runner
    return runner is None or str(runner).lower() in (LOCAL_RUNNER, "directrunner", "fnapirunner")


def new_pipeline(beam_args: Sequence[str], *, workers: int | None = None):
    """A ``beam.Pipeline`` on the chosen runner."""
    import apache_beam as beam

    options = make_options(beam_args, workers=workers)
    runner = make_runner(options)
    return beam.Pipeline(runner=runner, options=options)
