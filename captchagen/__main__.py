from captchagen.cli import main

main()
