"""`seekgate capabilities`: the capability matrix (task types against pack, route, backends,
guard profile, retrieval, SLO, caching), generated from the live configuration; `--xlsx FILE`
writes it as an editable Excel workbook, the form the design documents keep it in."""

from __future__ import annotations

import argparse
import sys


from seekgate.cli.common import print_json_lines, print_table, settings_from_args
from seekgate.settings import Settings

__all__ = ["COLUMNS", "add_parser", "matrix"]

COLUMNS = (
    "task", "description", "pack", "route", "backends", "long-context route", "guard profile",
    "retrieval", "SLO p95 ms", "cacheable", "max tokens", "risk levels",
)  # fmt: skip


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("capabilities", help="print the task capability matrix from the live configuration")
    p.add_argument("--xlsx", metavar="FILE", help="also write it as an Excel workbook")
    p.add_argument("--json", action="store_true", help="one JSON object per task")
    p.set_defaults(run=run)


def matrix(settings: Settings) -> list[dict[str, object]]:
    rows = []
    for name, profile in settings.tasks.items():
        route = list(profile.route) or [settings.server.default_model]
        backends: list[str] = []
        for alias in route:
            backend = settings.models[alias].backend
            label = f"{backend} ({type(settings.backends[backend]).__struct_config__.tag})"
            if label not in backends:
                backends.append(label)
        long_route = " > ".join(profile.long_context_route)
        rows.append(
            {
                "task": name,
                "description": profile.description,
                "pack": profile.pack or "(none)",
                "route": " > ".join(route),
                "backends": ", ".join(backends),
                "long-context route": f"over {profile.long_context_tokens} tokens: {long_route}" if long_route else "",
                "guard profile": profile.guard_profile,
                "retrieval": profile.retrieval or "(none)",
                "SLO p95 ms": profile.slo_p95_ms or None,
                "cacheable": profile.cacheable,
                "max tokens": profile.max_tokens or None,
                "risk levels": ", ".join(profile.risk_levels),
            }
        )
    return rows


def run(args: argparse.Namespace) -> int:
    rows = matrix(settings_from_args(args))
    if args.json:
        print_json_lines(rows)
    else:
        shown = ("task", "pack", "route", "backends", "guard profile", "retrieval", "SLO p95 ms", "cacheable")
        table = [[_cell(r[c]) for c in shown] for r in rows]
        print_table(shown, table)
    if args.xlsx:
        write_xlsx(rows, args.xlsx)
        print(f"wrote {args.xlsx}", file=sys.stderr)
    return 0


def write_xlsx(rows: list[dict[str, object]], path: str) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "capabilities"
    sheet.append(list(COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([row[c] for c in COLUMNS])
    for i, column in enumerate(COLUMNS, start=1):
        longest = max(len(str(column)), *(len(_cell(r[column])) for r in rows)) if rows else len(column)
        sheet.column_dimensions[sheet.cell(row=1, column=i).column_letter].width = min(60, longest + 2)
    for line in sheet.iter_rows(min_row=2):
        for cell in line:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = "B2"
    sheet.auto_filter.ref = sheet.dimensions
    book.save(path)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
