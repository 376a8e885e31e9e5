from services.gateway.audit.main import main

main()
