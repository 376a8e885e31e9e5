from services.dns.main import main

main()
