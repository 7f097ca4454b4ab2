import sys

from disentune.cli import main

sys.exit(main())
