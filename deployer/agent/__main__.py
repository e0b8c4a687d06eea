"""`python3 -m deployer.agent COMMAND`: see deployer/agent/commands.py."""

import sys

if sys.argv[1:] == ["health"]:
    from deployer.agent.probe import main
else:
    from deployer.agent.commands import main

raise SystemExit(main())
