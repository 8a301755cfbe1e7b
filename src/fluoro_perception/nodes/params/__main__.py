"""``python -m fluoro_perception.nodes.params``: see :mod:`fluoro_perception.nodes.params.cli`."""

import sys

from fluoro_perception.nodes.params.cli import main

sys.exit(main())
