{{ timestamp }}
{{ timestamp "unix" }}
{{ timestamp "2006-01-02 15:04:05 MST" }}
{{ timestamp "Mon, 02 Jan 2006 3:04PM" }}
