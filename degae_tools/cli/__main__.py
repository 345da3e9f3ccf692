from degae_tools.cli import main

main()
