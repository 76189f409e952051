#!/usr/bin/python3
"""docs/config.md is generated from the configuration table: it must equal `darkscope config-doc`."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("docs/config.md")
generated = dslib.run(["config-doc"]).stdout
committed = open(os.path.join(dslib.ROOT, "docs", "config.md")).read()
c.eq("docs/config.md equals `darkscope config-doc` (regenerate: build/darkscope config-doc > docs/config.md)",
     committed, generated)
c.done()
