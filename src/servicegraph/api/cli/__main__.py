from servicegraph.api.cli.main import main

main()
