"""Reports of training runs: figures, a self-contained HTML page, TensorBoard logs."""

from cnnkit.reports.report import REPORT_NAME, build_report

__all__ = ["REPORT_NAME", "build_report"]
