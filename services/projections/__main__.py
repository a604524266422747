from services.projections.main import main

main()
