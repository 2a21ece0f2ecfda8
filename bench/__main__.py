"""Command line: `python -m bench flash-sale [--quick] [--workers N] [--duration S] ...`."""

import argparse
import os
import sys
from pathlib import Path

from bench.runner import ROOT, Options, run
from bench.waiting_room import Settings


def _levels(text: str) -> list[int]:
    levels = [int(part) for part in text.split(",") if part.strip()]
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers, e.g. 16,64")
    return levels


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = main.add_subparsers(dest="command", required=True)
    flash = commands.add_parser("flash-sale", help="run the scenarios and the flash sale, write a report")
    flash.add_argument("--quick", action="store_true", help="a few seconds with small numbers (CI); never judges speed")
    flash.add_argument("--workers", type=int, help="gunicorn sync workers (default 2 x cores)")
    flash.add_argument("--duration", type=float, help="seconds per scenario (default 10; quick 1)")
    flash.add_argument("--connections", type=_levels, help="concurrency levels (default 16,64; quick 8)")
    flash.add_argument("--out", type=Path, help="report directory (default bench/results; quick bench/out)")
    flash.add_argument("--users", type=int, help="users (tokens) seeded (default 30000; quick 2000)")
    flash.add_argument("--flash-users", type=int, help="flash-sale users (default 10000; quick 200)")
    flash.add_argument("--flash-seats", type=int, help="flash-sale seats (default 1000; quick 50)")
    flash.add_argument("--flash-connections", type=int, help="flash-sale concurrency (default 256; quick 16)")
    flash.add_argument("--db-name", help="scratch database (default ft_bench; quick ft_bench_quick)")
    flash.add_argument(
        "--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    flash.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    flash.add_argument("--redis-prefix", help="Redis key prefix of the run (default ft-bench; quick ft-bench-quick)")
    flash.add_argument("--keep-db", action="store_true", help="keep the scratch database at the end")
    flash.add_argument(
        "--max-requests", type=int, default=0, help="gunicorn max_requests (default 0: workers are not recycled)"
    )
    flash.add_argument("--profile", action="store_true", help="py-spy a worker during auth-me, booking and sold-out")
    flash.add_argument(
        "--stack-workers", type=int, help="sync workers per FastTicket process in the scale-out scenario (default 2)"
    )
    flash.add_argument("--no-scale-out", action="store_true", help="skip the scale-out scenario (nginx, 3 processes)")
    flash.add_argument("--no-waiting-room", action="store_true", help="skip the waiting-room scenario")
    flash.add_argument("--crowd-users", type=int, help="waiting-room users (default 50000; quick 500)")
    flash.add_argument("--crowd-seats", type=int, help="waiting-room seats (default 1000; quick 50)")
    flash.add_argument(
        "--admit-per-minute", type=int, help="the waiting room's admit_per_minute (default 4000; quick 1500)"
    )
    flash.add_argument(
        "--admission-seconds", type=int, help="the waiting room's admission_seconds (default 60; quick 30)"
    )
    flash.add_argument("--queue-poll-budget", type=int, help="the server's QUEUE_POLL_BUDGET (default 1000; quick 250)")
    flash.add_argument(
        "--crowd-connections",
        type=int,
        help="the crowd's requests in flight after the opening (default 64; quick 16)",
    )
    return main


def options(args: argparse.Namespace) -> Options:
    quick = args.quick
    flash_users = args.flash_users or (200 if quick else 10_000)
    crowd = None
    if not args.no_waiting_room:
        crowd = Settings(
            users=args.crowd_users or (500 if quick else 50_000),
            seats=args.crowd_seats or (50 if quick else 1_000),
            admit_per_minute=args.admit_per_minute or (1_500 if quick else 4_000),
            admission_seconds=args.admission_seconds or (30 if quick else 60),
            poll_budget=args.queue_poll_budget or (250 if quick else 1_000),
            connections=args.crowd_connections or (16 if quick else 64),
        )
    return Options(
        quick=quick,
        workers=args.workers or 2 * (os.cpu_count() or 1),
        duration=args.duration or (1.0 if quick else 10.0),
        connections=args.connections or ([8] if quick else [16, 64]),
        out=(args.out or ROOT / "bench" / ("out" if quick else "results")).resolve(),
        users=max(args.users or (2_000 if quick else 30_000), flash_users, crowd.users if crowd else 0),
        flash_users=flash_users,
        flash_seats=args.flash_seats or (50 if quick else 1_000),
        flash_connections=args.flash_connections or (16 if quick else 256),
        db_name=args.db_name or ("ft_bench_quick" if quick else "ft_bench"),
        postgres_url=args.postgres_url,
        redis_url=args.redis_url,
        redis_prefix=args.redis_prefix or ("ft-bench-quick" if quick else "ft-bench"),
        keep_db=args.keep_db,
        profile=args.profile,
        warmup=not quick,
        max_requests=args.max_requests,
        stack_workers=None if args.no_scale_out else (args.stack_workers or 2),
        crowd=crowd,
    )


def main() -> int:
    args = parser().parse_args()
    try:
        return run(options(args))
    except KeyboardInterrupt:
        print("[bench] interrupted; everything it started was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
