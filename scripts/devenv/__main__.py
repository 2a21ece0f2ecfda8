import sys

from scripts.devenv.cli import main

sys.exit(main())
