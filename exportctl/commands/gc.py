"""`exportctl gc`: remove unreferenced blobs, dangling cache entries, stale temp files, and old bundles if asked."""

from __future__ import annotations

import click

from exportctl.commands.common import emit, err, json_option, open_store, out, store_option


@click.command()
@click.option("--dry-run", is_flag=True, help="Report what would be removed; remove nothing.")
@click.option("--keep-last", type=click.IntRange(min=0), default=None, metavar="N",
              help="Remove bundles beyond the N newest of each recipe.")
@click.option("--older-than", default=None, metavar="AGE", help="Remove bundles built longer ago (30d, 12h, 2w).")
@click.option("--include-signed", is_flag=True, help="Also remove signed or tagged bundles the rules select.")
@click.option("--drop-cache", is_flag=True, help="Empty the action cache too (the next build re-runs its cells).")
@store_option()
@json_option
def gc(dry_run: bool, keep_last: int | None, older_than: str | None, include_signed: bool, drop_cache: bool) -> None:
    """Remove what the store no longer needs; signed and tagged bundles stay unless --include-signed."""
    from exportctl.maintenance.gc import Options, collect, parse_age

    options = Options(dry_run, keep_last, parse_age(older_than) if older_than else None, include_signed,
                      drop_cache)
    report = collect(open_store(create=False), options, lambda msg: err().print(msg, highlight=False, markup=False))
    verb = "would free" if dry_run else "freed"
    emit(report, lambda: out().print(
        f"{verb} {report['bytes_freed']} bytes: {len(report['bundles_removed'])} bundles, "
        f"{report['referrers_removed']} referrers, {report['blobs_removed']} blobs, "
        f"{report['cache_entries_removed']} cache entries, {report['journal_entries_removed']} no-op journal "
        f"entries, {report['run_records_removed']} run records, "
        f"{report['temp_removed']} temp files; {report['bundles_kept']} bundles kept", highlight=False))
