from services.autoscaler.main import main

main()
