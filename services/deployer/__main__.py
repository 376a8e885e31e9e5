from services.deployer.main import main

main()
