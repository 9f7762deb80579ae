from eimzo_agent.cli import main

raise SystemExit(main())
