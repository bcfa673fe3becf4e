from vamp_cli.main import main

main()
