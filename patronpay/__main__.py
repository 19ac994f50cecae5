import sys

from patronpay.cli import main

sys.exit(main())
