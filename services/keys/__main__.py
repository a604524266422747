from services.keys.main import serve

serve()
