"""`exportctl fsck`: check every blob, manifest, referrer, cache entry and index row; --repair fixes."""

from __future__ import annotations

import click

from exportctl import errors
from exportctl.commands.common import emit, err, json_option, open_store, out, store_option


@click.command()
@click.option("--repair", is_flag=True, help="Drop dangling entries, quarantine corrupt blobs, re-index "
              "(never deletes a valid blob).")
@store_option()
@json_option
def fsck(repair: bool) -> None:
    """Check the whole store; exit 7 when something is wrong and was not repaired."""
    from exportctl.maintenance.fsck import check

    report = check(open_store(create=False), repair=repair,
                   say=lambda msg: err().print(msg, highlight=False, markup=False))

    def render() -> None:
        state = "clean" if not report["problems"] else ("repaired" if report["repaired"] else "PROBLEMS")
        out().print(f"{state}: {report['blobs_checked']} blobs, {report['bundles']} bundles, "
                    f"{report['referrers']} referrers", highlight=False)
        for line in [*report["problems"], *report["repaired"]]:
            out().print(f"  {line}", highlight=False, markup=False)

    emit(report, render)
    if not report["ok"]:
        raise errors.VerifyFailed(f"fsck found {len(report['problems'])} problem(s) in {report['store']}: "
                                  f"{report['problems'][0]}", hint="run `exportctl fsck --repair`")
