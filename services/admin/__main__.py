from services.admin.main import serve

serve()
