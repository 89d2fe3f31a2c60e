from exportctl.cli import main

main()
