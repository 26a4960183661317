from elevtts.cli import main

main()
