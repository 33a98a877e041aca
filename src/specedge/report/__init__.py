"""The comparison report: tables, seaborn figures and one self-contained HTML file.

- :mod:`~specedge.report.config`: what to compute (built-in ``default``/``quick`` configs or a user's TOML);
- :mod:`~specedge.report.build`: runs the sweeps and assembles the sections (:func:`build_report`);
- :mod:`~specedge.report.tables`, :mod:`~specedge.report.figures`: one function per table / figure, each figure
  returning its data table too;
- :mod:`~specedge.report.document`: sections, saving tables (CSV + Parquet) and figures, rendering the HTML;
- :mod:`~specedge.report.browser`: loading the HTML in headless Chromium to check it.
"""
