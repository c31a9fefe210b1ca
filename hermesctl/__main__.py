from hermesctl.cli import main

main()
