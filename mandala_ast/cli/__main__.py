"""``python -m mandala_ast.cli``: the ``mandala-ast`` command."""

import sys

from . import main

sys.exit(main())
