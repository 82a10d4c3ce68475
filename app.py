"""StableMaterials web UI, from a source checkout: `python app.py [--model PATH] [--host ...] [--port ...]`.

A thin launcher: the page is `stablematerials.webui` (installed with the package; `stablematerials app` starts
the same page).
"""

import sys

from stablematerials.webui import build_demo, main  # noqa: F401 - build_demo for `import app` users

if __name__ == "__main__":
    sys.exit(main())
