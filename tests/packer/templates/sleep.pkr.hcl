variable "pid_file" {
  type = string
}

source "null" "test" {
  communicator = "none"
}

build {
  sources = ["source.null.test"]

  provisioner "shell-local" {
    inline = ["echo $$ > ${var.pid_file}", "echo started", "sleep 600", "echo never"]
  }
}
